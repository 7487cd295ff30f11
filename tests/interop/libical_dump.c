/*
 * Read an .ics file the way Evolution/GNOME does (libical 3) and print what a
 * user would see as JSON, in the same shape as icaljs_dump.mjs, so tests can
 * compare the two clients' readings.
 *
 *   libical_dump FILE.ics [--expand-until 2030-01-01T00:00:00Z]
 *
 * Timed values are printed in UTC ("YYYY-MM-DDTHH:MM:SSZ"), all-day values as
 * "YYYY-MM-DD", floating values (no TZID, no Z) as local "YYYY-MM-DDTHH:MM:SS".
 * TZIDs resolve only against the file's own VTIMEZONEs, never libical's
 * built-in zone database: a subscriber's client may not have one.
 * Exit status: 0 when "errors" is empty, 1 when it is not (the JSON is still
 * printed), 2 for usage or I/O problems (no JSON).
 *
 * Build: cc -o libical_dump libical_dump.c $(pkg-config --cflags --libs libical)
 */
#define _GNU_SOURCE
#include <libical/ical.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_OCCURRENCES 1000
/* Bounds a rule that produces nothing before the horizon (e.g. BYMONTHDAY=30 in February). */
#define MAX_RECUR_STEPS 100000
#define TIME_TEXT 32
#define DEFAULT_UNTIL "2030-01-01T00:00:00Z"
#define USAGE "usage: libical_dump FILE.ics [--expand-until YYYY-MM-DDTHH:MM:SSZ]"

typedef struct {
    char **items;
    size_t len;
    size_t cap;
} strlist;

typedef struct {
    time_t recurrence;        /* where the rule put it: bounds and orders the expansion */
    char start[TIME_TEXT];    /* where it really starts, after any RECURRENCE-ID override */
} occurrence;

typedef struct {
    occurrence *items;
    size_t len;
    size_t cap;
} occlist;

static void *xrealloc(void *ptr, size_t size)
{
    void *result = realloc(ptr, size);
    if (result == NULL) {
        fputs("out of memory\n", stderr);
        exit(2);
    }
    return result;
}

static void strlist_pushf(strlist *list, const char *fmt, ...)
{
    va_list args;
    char *text = NULL;
    va_start(args, fmt);
    if (vasprintf(&text, fmt, args) < 0) {
        fputs("out of memory\n", stderr);
        exit(2);
    }
    va_end(args);
    if (list->len == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 8;
        list->items = xrealloc(list->items, list->cap * sizeof *list->items);
    }
    list->items[list->len++] = text;
}

static int strlist_contains(const strlist *list, const char *text)
{
    for (size_t i = 0; i < list->len; i++) {
        if (strcmp(list->items[i], text) == 0) {
            return 1;
        }
    }
    return 0;
}

static void strlist_free(strlist *list)
{
    for (size_t i = 0; i < list->len; i++) {
        free(list->items[i]);
    }
    free(list->items);
    list->items = NULL;
    list->len = list->cap = 0;
}

static void occlist_push(occlist *list, time_t recurrence, const char *start)
{
    if (list->len == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 16;
        list->items = xrealloc(list->items, list->cap * sizeof *list->items);
    }
    list->items[list->len].recurrence = recurrence;
    snprintf(list->items[list->len].start, TIME_TEXT, "%s", start);
    list->len++;
}

/* ---- JSON output ------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), or 0. */
static size_t utf8_sequence_length(const unsigned char *p)
{
    if (p[0] < 0x80) {
        return 1;
    }
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    }
    if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        unsigned char low = p[0] == 0xE0 ? 0xA0 : 0x80;
        unsigned char high = p[0] == 0xED ? 0x9F : 0xBF; /* no surrogates */
        return (p[1] >= low && p[1] <= high && (p[2] & 0xC0) == 0x80) ? 3 : 0;
    }
    if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        unsigned char low = p[0] == 0xF0 ? 0x90 : 0x80;
        unsigned char high = p[0] == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
        return (p[1] >= low && p[1] <= high && (p[2] & 0xC0) == 0x80 &&
                (p[3] & 0xC0) == 0x80) ? 4 : 0;
    }
    return 0;
}

static int valid_utf8(const char *text, size_t size)
{
    const unsigned char *p = (const unsigned char *)text;
    const unsigned char *end = p + size;
    while (p < end) {
        size_t n = utf8_sequence_length(p);
        if (n == 0 || (size_t)(end - p) < n) {
            return 0;
        }
        p += n;
    }
    return 1;
}

/* Writes text as a JSON string; bytes that are not UTF-8 become U+FFFD so the output always parses. */
static void json_string(FILE *out, const char *text)
{
    if (text == NULL) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        size_t n;
        switch (*p) {
        case '"': fputs("\\\"", out); p++; continue;
        case '\\': fputs("\\\\", out); p++; continue;
        case '\b': fputs("\\b", out); p++; continue;
        case '\f': fputs("\\f", out); p++; continue;
        case '\n': fputs("\\n", out); p++; continue;
        case '\r': fputs("\\r", out); p++; continue;
        case '\t': fputs("\\t", out); p++; continue;
        default: break;
        }
        if (*p < 0x20) {
            fprintf(out, "\\u%04x", *p);
            p++;
            continue;
        }
        n = utf8_sequence_length(p);
        if (n == 0) {
            fputs("\\ufffd", out);
            p++;
        } else {
            fwrite(p, 1, n, out);
            p += n;
        }
    }
    fputc('"', out);
}

static void json_key(FILE *out, const char *key, int first)
{
    if (!first) {
        fputc(',', out);
    }
    json_string(out, key);
    fputc(':', out);
}

/* ---- times ------------------------------------------------------------- */

static icaltimezone *utc(void)
{
    return icaltimezone_get_utc_timezone();
}

/*
 * Gives a time read from prop its zone from the calendar's own VTIMEZONE.
 * An unknown TZID leaves it floating; check_tzids has reported it already.
 */
static struct icaltimetype with_zone(icalcomponent *vcalendar, icalproperty *prop,
                                     struct icaltimetype time)
{
    icalparameter *param;
    if (time.is_date || icaltime_is_utc(time)) {
        return time;
    }
    time.zone = NULL;
    param = icalproperty_get_first_parameter(prop, ICAL_TZID_PARAMETER);
    if (param != NULL) {
        icaltimezone *zone = icalcomponent_get_timezone(vcalendar, icalparameter_get_tzid(param));
        if (zone != NULL) {
            icaltime_set_timezone(&time, zone);
        }
    }
    return time;
}

static int is_floating(struct icaltimetype time)
{
    return !time.is_date && time.zone == NULL;
}

static void format_time(struct icaltimetype time, char out[TIME_TEXT])
{
    if (time.is_date) {
        snprintf(out, TIME_TEXT, "%04d-%02d-%02d", time.year, time.month, time.day);
    } else if (is_floating(time)) {
        snprintf(out, TIME_TEXT, "%04d-%02d-%02dT%02d:%02d:%02d", time.year, time.month,
                 time.day, time.hour, time.minute, time.second);
    } else {
        struct icaltimetype u = icaltime_convert_to_zone(time, utc());
        snprintf(out, TIME_TEXT, "%04d-%02d-%02dT%02d:%02d:%02dZ", u.year, u.month, u.day,
                 u.hour, u.minute, u.second);
    }
}

/* Seconds since the epoch; dates and floating times count as UTC, as ical.js does. */
static time_t instant(struct icaltimetype time)
{
    if (time.is_date || is_floating(time)) {
        return icaltime_as_timet(time);
    }
    return icaltime_as_timet(icaltime_convert_to_zone(time, utc()));
}

/* ---- properties -------------------------------------------------------- */

/* The decoded text of a property, like ical.js's getFirstValue. */
static const char *property_text(icalproperty *prop)
{
    icalvalue *value = icalproperty_get_value(prop);
    if (value == NULL) {
        return NULL;
    }
    switch (icalvalue_isa(value)) {
    case ICAL_TEXT_VALUE:
        return icalvalue_get_text(value);
    case ICAL_X_VALUE:
        return icalvalue_get_x(value);
    default:
        return icalproperty_get_value_as_string(prop);
    }
}

static const char *first_text(icalcomponent *comp, icalproperty_kind kind)
{
    icalproperty *prop = icalcomponent_get_first_property(comp, kind);
    return prop == NULL ? NULL : property_text(prop);
}

static const char *uid_of(icalcomponent *comp)
{
    icalproperty *prop = icalcomponent_get_first_property(comp, ICAL_UID_PROPERTY);
    return prop == NULL ? NULL : icalproperty_get_uid(prop);
}

/* ---- checks ------------------------------------------------------------ */

/* X-LIC-ERROR is how libical reports what it could not parse; it keeps going. */
static void collect_parse_errors(icalcomponent *comp, strlist *errors)
{
    const char *uid = uid_of(comp); /* before the loop: it moves comp's property cursor */
    icalproperty *prop;
    icalcomponent *child;
    for (prop = icalcomponent_get_first_property(comp, ICAL_XLICERROR_PROPERTY); prop != NULL;
         prop = icalcomponent_get_next_property(comp, ICAL_XLICERROR_PROPERTY)) {
        icalparameter *param = icalproperty_get_first_parameter(prop, ICAL_XLICERRORTYPE_PARAMETER);
        const char *type =
            param ? icalparameter_enum_to_string(icalparameter_get_xlicerrortype(param)) : NULL;
        strlist_pushf(errors, "X-LIC-ERROR in %s %s: %s: %s",
                      icalcomponent_kind_to_string(icalcomponent_isa(comp)),
                      uid ? uid : "(no UID)", type ? type : "(no type)",
                      icalproperty_get_xlicerror(prop));
    }
    for (child = icalcomponent_get_first_component(comp, ICAL_ANY_COMPONENT); child != NULL;
         child = icalcomponent_get_next_component(comp, ICAL_ANY_COMPONENT)) {
        collect_parse_errors(child, errors);
    }
}

/* A TZID without a VTIMEZONE in the file means a wrong hour for some subscriber. */
static void check_tzids(icalcomponent *vcalendar, icalcomponent *comp, strlist *errors)
{
    const char *uid = uid_of(comp); /* before the loop: it moves comp's property cursor */
    icalproperty *prop;
    icalcomponent *child;
    for (prop = icalcomponent_get_first_property(comp, ICAL_ANY_PROPERTY); prop != NULL;
         prop = icalcomponent_get_next_property(comp, ICAL_ANY_PROPERTY)) {
        icalparameter *param;
        for (param = icalproperty_get_first_parameter(prop, ICAL_TZID_PARAMETER); param != NULL;
             param = icalproperty_get_next_parameter(prop, ICAL_TZID_PARAMETER)) {
            const char *tzid = icalparameter_get_tzid(param);
            if (icalcomponent_get_timezone(vcalendar, tzid) == NULL) {
                strlist_pushf(errors, "%s of %s %s: TZID \"%s\" has no VTIMEZONE in the file",
                              icalproperty_get_property_name(prop),
                              icalcomponent_kind_to_string(icalcomponent_isa(comp)),
                              uid ? uid : "(no UID)", tzid);
            }
        }
    }
    for (child = icalcomponent_get_first_component(comp, ICAL_ANY_COMPONENT); child != NULL;
         child = icalcomponent_get_next_component(comp, ICAL_ANY_COMPONENT)) {
        if (icalcomponent_isa(child) != ICAL_VTIMEZONE_COMPONENT) {
            check_tzids(vcalendar, child, errors);
        }
    }
}

/* ---- recurrence -------------------------------------------------------- */

typedef struct {
    icalcomponent *vcalendar;
    icalcomponent *master;
    struct icaltimetype start;
    time_t until;
    strlist excluded;        /* EXDATEs formatted like occurrence starts */
    strlist excluded_days;   /* DATE EXDATEs of a timed event: the whole local day */
    strlist override_ids;    /* RECURRENCE-IDs of overrides, formatted */
    strlist override_starts; /* their DTSTARTs, same index */
    occlist found;
} expansion;

static void add_candidate(expansion *exp, struct icaltimetype time)
{
    char key[TIME_TEXT];
    char day[TIME_TEXT];
    format_time(time, key);
    snprintf(day, sizeof day, "%04d-%02d-%02d", time.year, time.month, time.day);
    if (strlist_contains(&exp->excluded, key) || strlist_contains(&exp->excluded_days, day)) {
        return;
    }
    for (size_t i = 0; i < exp->override_ids.len; i++) {
        if (strcmp(exp->override_ids.items[i], key) == 0) {
            occlist_push(&exp->found, instant(time), exp->override_starts.items[i]);
            return;
        }
    }
    occlist_push(&exp->found, instant(time), key);
}

static void collect_exceptions(expansion *exp, const char *uid)
{
    icalproperty *prop;
    icalcomponent *other;
    icalcompiter it;
    for (prop = icalcomponent_get_first_property(exp->master, ICAL_EXDATE_PROPERTY); prop != NULL;
         prop = icalcomponent_get_next_property(exp->master, ICAL_EXDATE_PROPERTY)) {
        struct icaltimetype time = with_zone(exp->vcalendar, prop, icalproperty_get_exdate(prop));
        char text[TIME_TEXT];
        format_time(time, text);
        strlist_pushf(time.is_date && !exp->start.is_date ? &exp->excluded_days : &exp->excluded,
                      "%s", text);
    }
    if (uid == NULL) {
        return;
    }
    /* A private iterator: the caller is walking the calendar's VEVENTs with the shared cursor. */
    for (it = icalcomponent_begin_component(exp->vcalendar, ICAL_VEVENT_COMPONENT);
         (other = icalcompiter_deref(&it)) != NULL; icalcompiter_next(&it)) {
        icalproperty *rid = icalcomponent_get_first_property(other, ICAL_RECURRENCEID_PROPERTY);
        icalproperty *dtstart = icalcomponent_get_first_property(other, ICAL_DTSTART_PROPERTY);
        const char *other_uid = uid_of(other);
        char text[TIME_TEXT];
        if (rid == NULL || dtstart == NULL || other_uid == NULL || strcmp(other_uid, uid) != 0) {
            continue;
        }
        format_time(with_zone(exp->vcalendar, rid, icalproperty_get_recurrenceid(rid)), text);
        strlist_pushf(&exp->override_ids, "%s", text);
        format_time(with_zone(exp->vcalendar, dtstart, icalproperty_get_dtstart(dtstart)), text);
        strlist_pushf(&exp->override_starts, "%s", text);
    }
}

static void expand_rules(expansion *exp, const char *uid, strlist *errors)
{
    icalproperty *prop;
    for (prop = icalcomponent_get_first_property(exp->master, ICAL_RRULE_PROPERTY); prop != NULL;
         prop = icalcomponent_get_next_property(exp->master, ICAL_RRULE_PROPERTY)) {
        struct icalrecurrencetype rule = icalproperty_get_rrule(prop);
        icalrecur_iterator *it = icalrecur_iterator_new(rule, exp->start);
        size_t accepted = exp->found.len;
        if (it == NULL) {
            strlist_pushf(errors, "VEVENT %s: libical cannot iterate RRULE %s (%s)",
                          uid ? uid : "(no UID)", icalproperty_get_value_as_string(prop),
                          icalerror_strerror(icalerrno));
            continue;
        }
        for (long steps = 0; steps < MAX_RECUR_STEPS; steps++) {
            struct icaltimetype next = icalrecur_iterator_next(it);
            if (icaltime_is_null_time(next)) {
                break;
            }
            next.zone = exp->start.zone;
            if (instant(next) >= exp->until) {
                break;
            }
            add_candidate(exp, next);
            if (exp->found.len - accepted >= MAX_OCCURRENCES) {
                break;
            }
        }
        icalrecur_iterator_free(it);
    }
    for (prop = icalcomponent_get_first_property(exp->master, ICAL_RDATE_PROPERTY); prop != NULL;
         prop = icalcomponent_get_next_property(exp->master, ICAL_RDATE_PROPERTY)) {
        struct icaldatetimeperiodtype value = icalproperty_get_rdate(prop);
        struct icaltimetype time =
            icaltime_is_null_time(value.time) ? value.period.start : value.time;
        time = with_zone(exp->vcalendar, prop, time);
        if (instant(time) < exp->until) {
            add_candidate(exp, time);
        }
    }
}

static int by_recurrence(const void *a, const void *b)
{
    time_t left = ((const occurrence *)a)->recurrence;
    time_t right = ((const occurrence *)b)->recurrence;
    return (left > right) - (left < right);
}

static int by_start(const void *a, const void *b)
{
    return strcmp(((const occurrence *)a)->start, ((const occurrence *)b)->start);
}

/* Same result as ical.js's iterator: the first 1000 in rule order, then sorted by real start. */
static void write_occurrences(FILE *out, icalcomponent *vcalendar, icalcomponent *vevent,
                              struct icaltimetype start, time_t until, strlist *errors)
{
    expansion exp;
    const char *uid = uid_of(vevent);
    memset(&exp, 0, sizeof exp);
    exp.vcalendar = vcalendar;
    exp.master = vevent;
    exp.start = start;
    exp.until = until;
    collect_exceptions(&exp, uid);
    expand_rules(&exp, uid, errors);
    qsort(exp.found.items, exp.found.len, sizeof *exp.found.items, by_recurrence);
    if (exp.found.len > MAX_OCCURRENCES) {
        exp.found.len = MAX_OCCURRENCES;
    }
    qsort(exp.found.items, exp.found.len, sizeof *exp.found.items, by_start);
    fputc('[', out);
    for (size_t i = 0; i < exp.found.len; i++) {
        if (i > 0) {
            fputc(',', out);
        }
        json_string(out, exp.found.items[i].start);
    }
    fputc(']', out);
    strlist_free(&exp.excluded);
    strlist_free(&exp.excluded_days);
    strlist_free(&exp.override_ids);
    strlist_free(&exp.override_starts);
    free(exp.found.items);
}

/* ---- events ------------------------------------------------------------ */

/* RFC 5545 3.6.1: no DTEND and no DURATION means one day for a date, zero length otherwise. */
static struct icaltimetype event_end(icalcomponent *vcalendar, icalcomponent *vevent,
                                     struct icaltimetype start)
{
    icalproperty *prop = icalcomponent_get_first_property(vevent, ICAL_DTEND_PROPERTY);
    if (prop != NULL) {
        return with_zone(vcalendar, prop, icalproperty_get_dtend(prop));
    }
    prop = icalcomponent_get_first_property(vevent, ICAL_DURATION_PROPERTY);
    if (prop != NULL) {
        return icaltime_add(start, icalproperty_get_duration(prop));
    }
    if (start.is_date) {
        struct icaldurationtype day = icaldurationtype_null_duration();
        day.days = 1;
        return icaltime_add(start, day);
    }
    return start;
}

/* Writes one event object; returns 0 (and reports why) when there is nothing a client could show. */
static int write_event(FILE *out, int first, icalcomponent *vcalendar, icalcomponent *vevent,
                       time_t until, strlist *errors)
{
    icalproperty *dtstart = icalcomponent_get_first_property(vevent, ICAL_DTSTART_PROPERTY);
    icalproperty *rid = icalcomponent_get_first_property(vevent, ICAL_RECURRENCEID_PROPERTY);
    icalproperty *prop;
    icalparameter *tzid;
    struct icaltimetype start;
    char text[TIME_TEXT];
    int first_value = 1;

    if (dtstart == NULL) {
        const char *uid = uid_of(vevent);
        strlist_pushf(errors, "VEVENT %s: VEVENT has no DTSTART", uid ? uid : "(no UID)");
        return 0;
    }
    start = with_zone(vcalendar, dtstart, icalproperty_get_dtstart(dtstart));

    if (!first) {
        fputc(',', out);
    }
    fputc('{', out);
    json_key(out, "uid", 1);
    json_string(out, uid_of(vevent));
    json_key(out, "recurrence_id", 0);
    if (rid == NULL) {
        fputs("null", out);
    } else {
        format_time(with_zone(vcalendar, rid, icalproperty_get_recurrenceid(rid)), text);
        json_string(out, text);
    }
    json_key(out, "summary", 0);
    json_string(out, first_text(vevent, ICAL_SUMMARY_PROPERTY));
    json_key(out, "description", 0);
    json_string(out, first_text(vevent, ICAL_DESCRIPTION_PROPERTY));
    json_key(out, "location", 0);
    json_string(out, first_text(vevent, ICAL_LOCATION_PROPERTY));
    json_key(out, "status", 0);
    json_string(out, first_text(vevent, ICAL_STATUS_PROPERTY));
    json_key(out, "sequence", 0);
    prop = icalcomponent_get_first_property(vevent, ICAL_SEQUENCE_PROPERTY);
    if (prop == NULL) {
        fputs("null", out);
    } else {
        fprintf(out, "%d", icalproperty_get_sequence(prop));
    }
    json_key(out, "url", 0);
    json_string(out, first_text(vevent, ICAL_URL_PROPERTY));
    json_key(out, "categories", 0);
    fputc('[', out);
    for (prop = icalcomponent_get_first_property(vevent, ICAL_CATEGORIES_PROPERTY); prop != NULL;
         prop = icalcomponent_get_next_property(vevent, ICAL_CATEGORIES_PROPERTY)) {
        if (!first_value) {
            fputc(',', out);
        }
        json_string(out, property_text(prop));
        first_value = 0;
    }
    fputc(']', out);
    json_key(out, "all_day", 0);
    fputs(start.is_date ? "true" : "false", out);
    json_key(out, "start", 0);
    format_time(start, text);
    json_string(out, text);
    json_key(out, "end", 0);
    format_time(event_end(vcalendar, vevent, start), text);
    json_string(out, text);
    json_key(out, "tzid", 0);
    tzid = icalproperty_get_first_parameter(dtstart, ICAL_TZID_PARAMETER);
    json_string(out, tzid ? icalparameter_get_tzid(tzid) : NULL);
    json_key(out, "occurrences", 0);
    if (rid == NULL && (icalcomponent_get_first_property(vevent, ICAL_RRULE_PROPERTY) != NULL ||
                        icalcomponent_get_first_property(vevent, ICAL_RDATE_PROPERTY) != NULL)) {
        write_occurrences(out, vcalendar, vevent, start, until, errors);
    } else {
        fputs("[]", out);
    }
    fputc('}', out);
    return 1;
}

/* ---- calendar ---------------------------------------------------------- */

static void dump_calendar(icalcomponent *vcalendar, time_t until, strlist *calendar_props,
                          FILE *events, int *event_count, strlist *errors)
{
    icalproperty *prop;
    icalcomponent *vevent;
    for (prop = icalcomponent_get_first_property(vcalendar, ICAL_ANY_PROPERTY); prop != NULL;
         prop = icalcomponent_get_next_property(vcalendar, ICAL_ANY_PROPERTY)) {
        const char *name = icalproperty_get_property_name(prop);
        const char *value = property_text(prop);
        if (icalproperty_isa(prop) == ICAL_XLICERROR_PROPERTY) {
            continue;
        }
        /* Pairs of name, value; the first of a repeated property wins, as in ical.js. */
        int seen = 0;
        for (size_t i = 0; i < calendar_props->len; i += 2) {
            seen |= strcmp(calendar_props->items[i], name) == 0;
        }
        if (!seen) {
            strlist_pushf(calendar_props, "%s", name);
            strlist_pushf(calendar_props, "%s", value ? value : "");
        }
    }
    check_tzids(vcalendar, vcalendar, errors);
    for (vevent = icalcomponent_get_first_component(vcalendar, ICAL_VEVENT_COMPONENT);
         vevent != NULL;
         vevent = icalcomponent_get_next_component(vcalendar, ICAL_VEVENT_COMPONENT)) {
        *event_count += write_event(events, *event_count == 0, vcalendar, vevent, until, errors);
    }
}

static char *read_file(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    char *data = NULL;
    size_t used = 0;
    size_t cap = 0;
    if (file == NULL) {
        return NULL;
    }
    for (;;) {
        size_t n;
        if (cap - used < 4096) {
            cap = cap ? cap * 2 : 65536;
            data = xrealloc(data, cap + 1);
        }
        n = fread(data + used, 1, cap - used, file);
        used += n;
        if (n == 0) {
            break;
        }
    }
    if (ferror(file)) {
        fclose(file);
        free(data);
        return NULL;
    }
    fclose(file);
    data[used] = '\0';
    *size = used;
    return data;
}

static time_t parse_until(const char *text)
{
    struct icaltimetype time;
    int year, month, day, hour, minute, second;
    char tail;
    if (strlen(text) != 20 ||
        sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%c", &year, &month, &day, &hour, &minute, &second,
               &tail) != 7 || tail != 'Z') {
        fprintf(stderr, "--expand-until must look like %s, got \"%s\"\n%s\n", DEFAULT_UNTIL,
                text, USAGE);
        exit(2);
    }
    time = icaltime_null_time();
    time.year = year;
    time.month = month;
    time.day = day;
    time.hour = hour;
    time.minute = minute;
    time.second = second;
    return icaltime_as_timet(time);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    const char *until_text = DEFAULT_UNTIL;
    strlist errors = {0};
    strlist calendar_props = {0};
    char *events_text = NULL;
    size_t events_size = 0;
    FILE *events;
    int event_count = 0;
    char *data;
    size_t size = 0;
    icalcomponent *root;
    time_t until;
    int status;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--expand-until") == 0 && i + 1 < argc) {
            until_text = argv[++i];
        } else if (path == NULL && argv[i][0] != '-') {
            path = argv[i];
        } else {
            fprintf(stderr, "unexpected argument \"%s\"\n%s\n", argv[i], USAGE);
            return 2;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "expected exactly one FILE.ics\n%s\n", USAGE);
        return 2;
    }
    until = parse_until(until_text);
    data = read_file(path, &size);
    if (data == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        return 2;
    }

    /* Report problems instead of abort()ing on the first one. */
    icalerror_set_errors_are_fatal(0);
    if (strlen(data) != size) {
        strlist_pushf(&errors, "file contains a NUL byte");
    }
    if (!valid_utf8(data, size)) {
        strlist_pushf(&errors, "file is not valid UTF-8");
    }
    events = open_memstream(&events_text, &events_size);
    if (events == NULL) {
        fputs("out of memory\n", stderr);
        return 2;
    }
    root = icalparser_parse_string(data);
    if (root == NULL) {
        /* libical gives nothing back for a BEGIN without its END, too. */
        strlist_pushf(&errors, "parse: no complete component in the file");
    } else {
        icalcomponent_kind kind = icalcomponent_isa(root);
        collect_parse_errors(root, &errors);
        if (kind == ICAL_VCALENDAR_COMPONENT) {
            dump_calendar(root, until, &calendar_props, events, &event_count, &errors);
        } else if (kind == ICAL_XROOT_COMPONENT) { /* several top-level components */
            icalcomponent *child;
            for (child = icalcomponent_get_first_component(root, ICAL_ANY_COMPONENT);
                 child != NULL; child = icalcomponent_get_next_component(root, ICAL_ANY_COMPONENT)) {
                if (icalcomponent_isa(child) == ICAL_VCALENDAR_COMPONENT) {
                    dump_calendar(child, until, &calendar_props, events, &event_count, &errors);
                } else {
                    strlist_pushf(&errors, "top-level component is %s, not VCALENDAR",
                                  icalcomponent_kind_to_string(icalcomponent_isa(child)));
                }
            }
        } else {
            strlist_pushf(&errors, "top-level component is %s, not VCALENDAR",
                          icalcomponent_kind_to_string(kind));
        }
        icalcomponent_free(root);
    }
    fclose(events);

    fputs("{\"calendar\":{", stdout);
    for (size_t i = 0; i + 1 < calendar_props.len; i += 2) {
        json_key(stdout, calendar_props.items[i], i == 0);
        json_string(stdout, calendar_props.items[i + 1]);
    }
    fputs("},\"events\":[", stdout);
    fwrite(events_text, 1, events_size, stdout);
    fputs("],\"errors\":[", stdout);
    for (size_t i = 0; i < errors.len; i++) {
        if (i > 0) {
            fputc(',', stdout);
        }
        json_string(stdout, errors.items[i]);
    }
    fputs("]}\n", stdout);

    status = errors.len > 0 ? 1 : 0;
    free(events_text);
    free(data);
    strlist_free(&calendar_props);
    strlist_free(&errors);
    return status;
}
