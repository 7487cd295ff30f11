// Keeps "past" labels right when a page is read after it was built, and shows
// the time in the reader's own timezone when it differs. Every page is complete
// without it. A file of its own, not inline: browsers cache it once for the site,
// and it runs under a Content-Security-Policy that forbids inline scripts.
(function () {
  "use strict";
  var now = Date.now();
  document.querySelectorAll("[data-ends]").forEach(function (item) {
    var past = Date.parse(item.getAttribute("data-ends")) <= now;
    item.classList.toggle("is-past", past);
    item.querySelectorAll("[data-past-notice]").forEach(function (notice) {
      notice.hidden = !past;
    });
  });
  document.querySelectorAll("[data-listing]").forEach(function (box) {
    var upcoming = box.querySelector("[data-list=upcoming]");
    var past = box.querySelector("[data-list=past]");
    Array.prototype.slice.call(upcoming.children).forEach(function (item) {
      if (item.classList.contains("is-past")) { past.insertBefore(item, past.firstChild); }
    });
    box.querySelector("[data-empty]").hidden = upcoming.children.length > 0;
    box.querySelector("[data-past-section]").hidden = past.children.length === 0;
  });
  document.querySelectorAll("[data-your-time]").forEach(function (line) {
    var start = new Date(line.getAttribute("data-start"));
    var end = new Date(line.getAttribute("data-end"));
    var lang = document.documentElement.lang;
    var style = {weekday: "long", month: "long", day: "numeric", hour: "numeric", minute: "2-digit"};
    try {
      var there = new Intl.DateTimeFormat(lang, Object.assign({timeZone: line.getAttribute("data-tz")}, style));
      var here = new Intl.DateTimeFormat(lang, style);
      if (there.format(start) === here.format(start)) { return; }
      var zoned = new Intl.DateTimeFormat(lang, Object.assign({timeZoneName: "short"}, style));
      line.querySelector("[data-value]").textContent = zoned.formatRange(start, end);
      line.hidden = false;
    } catch (error) { /* an older browser: the event's own time is shown already */ }
  });
})();
