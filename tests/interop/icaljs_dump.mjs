#!/usr/bin/env node
// Read an .ics file the way Thunderbird does (ical.js) and print what a user
// would see as JSON, so tests can compare it with other clients' readings.
//
//   node icaljs_dump.mjs FILE.ics [--expand-until 2030-01-01T00:00:00Z]
//
// Timed values are printed in UTC ("YYYY-MM-DDTHH:MM:SSZ"), all-day values as
// "YYYY-MM-DD", floating values (no TZID, no Z) as local "YYYY-MM-DDTHH:MM:SS".
// Exit status: 0 when "errors" is empty, 1 when it is not (the JSON is still
// printed), 2 for usage or I/O problems (no JSON).

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import ICAL from 'ical.js';

const MAX_OCCURRENCES = 1000;
const DEFAULT_UNTIL = '2030-01-01T00:00:00Z';
const UTC_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const USAGE = 'usage: node icaljs_dump.mjs FILE.ics [--expand-until YYYY-MM-DDTHH:MM:SSZ]';

function fail(message) {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function readArguments(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { 'expand-until': { type: 'string', default: DEFAULT_UNTIL } },
    });
  } catch (err) {
    fail(err.message);
  }
  if (parsed.positionals.length !== 1) {
    fail('expected exactly one FILE.ics');
  }
  const until = parsed.values['expand-until'];
  if (!UTC_RE.test(until)) {
    fail(`--expand-until must look like ${DEFAULT_UNTIL}, got ${JSON.stringify(until)}`);
  }
  return { file: parsed.positionals[0], until: ICAL.Time.fromString(until) };
}

// Thunderbird decodes the bytes first: a BOM is dropped and bad UTF-8 is an error
// here because a generator of ours must never produce it.
function readText(file, errors) {
  let bytes;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    fail(`cannot read ${file}: ${err.message}`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    errors.push('file is not valid UTF-8');
    return new TextDecoder('utf-8').decode(bytes);
  }
}

function isFloating(time) {
  return time.zone === ICAL.Timezone.localTimezone;
}

function formatTime(time) {
  if (time.isDate || isFloating(time)) {
    return time.toString();
  }
  return time.convertToZone(ICAL.Timezone.utcTimezone).toString();
}

function valueToString(value) {
  return typeof value === 'string' ? value : String(value);
}

function firstText(component, name) {
  const value = component.getFirstPropertyValue(name);
  return value === null || value === undefined ? null : valueToString(value);
}

// The first of a repeated property wins, also across several VCALENDARs.
function addCalendarProperties(vcalendar, props) {
  for (const prop of vcalendar.getAllProperties()) {
    const name = prop.name.toUpperCase();
    if (!(name in props)) {
      props[name] = prop.getValues().map(valueToString).join(',');
    }
  }
}

// ical.js silently turns an unknown TZID into floating time; a user would see
// the wrong hour, so every such reference is an error of the file.
function checkTzids(component, knownTzids, errors) {
  for (const prop of component.getAllProperties()) {
    const tzid = prop.getParameter('tzid');
    if (tzid !== undefined && tzid !== null && !knownTzids.has(tzid)) {
      const uid = component.getFirstPropertyValue('uid');
      errors.push(
        `${prop.name.toUpperCase()} of ${component.name.toUpperCase()} ` +
          `${uid ?? '(no UID)'}: TZID ${JSON.stringify(tzid)} has no VTIMEZONE in the file`,
      );
    }
  }
  for (const child of component.getAllSubcomponents()) {
    if (child.name !== 'vtimezone') {
      checkTzids(child, knownTzids, errors);
    }
  }
}

function expand(event, until) {
  const starts = [];
  const iterator = event.iterator();
  const limit = until.toUnixTime();
  while (starts.length < MAX_OCCURRENCES) {
    const next = iterator.next();
    if (!next || next.toUnixTime() >= limit) {
      break;
    }
    starts.push(formatTime(event.getOccurrenceDetails(next).startDate));
  }
  return starts.sort();
}

function dumpEvent(vevent, overrides, until) {
  const isOverride = vevent.hasProperty('recurrence-id');
  // Relate overrides by UID only: without explicit exceptions ical.js relates
  // every RECURRENCE-ID VEVENT of the calendar to every master.
  const event = new ICAL.Event(vevent, {
    strictExceptions: true,
    exceptions: isOverride ? [] : overrides,
  });
  const start = event.startDate;
  if (!start) {
    throw new Error('VEVENT has no DTSTART');
  }
  const tzid = vevent.getFirstProperty('dtstart').getParameter('tzid');
  return {
    uid: event.uid,
    recurrence_id: event.recurrenceId ? formatTime(event.recurrenceId) : null,
    summary: firstText(vevent, 'summary'),
    description: firstText(vevent, 'description'),
    location: firstText(vevent, 'location'),
    status: firstText(vevent, 'status'),
    sequence: vevent.getFirstPropertyValue('sequence') ?? null,
    url: firstText(vevent, 'url'),
    categories: vevent
      .getAllProperties('categories')
      .flatMap((prop) => prop.getValues().map(valueToString)),
    all_day: start.isDate,
    start: formatTime(start),
    end: formatTime(event.endDate),
    tzid: tzid ?? null,
    occurrences: event.isRecurring() && !isOverride ? expand(event, until) : [],
  };
}

function dumpCalendar(vcalendar, until, result) {
  addCalendarProperties(vcalendar, result.calendar);
  const knownTzids = new Set();
  for (const vtimezone of vcalendar.getAllSubcomponents('vtimezone')) {
    try {
      // What Thunderbird does on import: the file's own zones win.
      ICAL.TimezoneService.register(vtimezone);
      knownTzids.add(vtimezone.getFirstPropertyValue('tzid'));
    } catch (err) {
      result.errors.push(`VTIMEZONE: ${err.message}`);
    }
  }
  checkTzids(vcalendar, knownTzids, result.errors);

  const vevents = vcalendar.getAllSubcomponents('vevent');
  const overridesByUid = new Map();
  for (const vevent of vevents) {
    if (vevent.hasProperty('recurrence-id')) {
      const uid = vevent.getFirstPropertyValue('uid');
      overridesByUid.set(uid, [...(overridesByUid.get(uid) ?? []), vevent]);
    }
  }
  for (const vevent of vevents) {
    const uid = vevent.getFirstPropertyValue('uid');
    try {
      result.events.push(dumpEvent(vevent, overridesByUid.get(uid) ?? [], until));
    } catch (err) {
      result.errors.push(`VEVENT ${uid ?? '(no UID)'}: ${err.message}`);
    }
  }
}

function main() {
  const { file, until } = readArguments(process.argv.slice(2));
  const result = { calendar: {}, events: [], errors: [] };
  const text = readText(file, result.errors);
  let jcal = null;
  try {
    jcal = ICAL.parse(text);
  } catch (err) {
    result.errors.push(`parse: ${err.message}`);
  }
  if (jcal !== null) {
    // ICAL.parse returns one component, or an array when there are several.
    const roots = jcal.length > 0 && Array.isArray(jcal[0]) ? jcal : [jcal];
    for (const root of roots) {
      if (root.length === 0) {
        result.errors.push('parse: no complete component in the file');
        continue;
      }
      const component = new ICAL.Component(root);
      if (component.name !== 'vcalendar') {
        result.errors.push(`top-level component is ${component.name.toUpperCase()}, not VCALENDAR`);
        continue;
      }
      try {
        dumpCalendar(component, until, result);
      } catch (err) {
        result.errors.push(`VCALENDAR: ${err.message}`);
      }
    }
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.exitCode = result.errors.length > 0 ? 1 : 0;
}

main();
