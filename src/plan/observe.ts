/**
 * Observed schemas: per day, tenant and event name, the properties the collector has seen with their JSON
 * types and counts. Request workers count (ObservationCounter, on plain data so a worker can hand its counts
 * over); the request thread merges them and writes one small file per day, tenant and node under `schemas/`
 * (SchemaRecorder). `plan infer` and `plan lint` read them. Counts are statistics, not events: they are
 * written every flush interval, and a crash loses at most that interval's counts.
 */
import { keys } from '../lake/layout.js';
import type { ObjectStore } from '../storage/store.js';

export const JSON_TYPES = ['string', 'integer', 'number', 'boolean', 'object', 'array', 'null'] as const;
export type JsonType = (typeof JSON_TYPES)[number];

/** The pseudo event name identify calls' traits are counted under. */
export const IDENTIFY = '$identify';

/** Bounds that keep a tenant sending random names from growing the state without end. */
const MAX_EVENTS = 2000;
const MAX_PROPERTIES = 500;

export function jsonType(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'number':
      return Number.isInteger(v) ? 'integer' : 'number';
    case 'boolean':
      return 'boolean';
    default:
      return 'object';
  }
}
const TYPE_INDEX = new Map<JsonType, number>(JSON_TYPES.map((t, i) => [t, i]));

/**
 * One event's observed shape: how often it was seen, and per property the count of each JSON type. Nested
 * values one level down are counted too: `parent.key` for an object's keys, `parent[]` for an array's first
 * item and `parent[].key` for that item's keys (counted per occurrence of the parent).
 */
export interface EventShape {
  count: number;
  properties: Record<string, Partial<Record<JsonType, number>>>;
}

/** A day's shapes for one tenant: the file under schemas/. */
export interface SchemaFile {
  version: 1;
  day: string;
  tenant: string;
  events: Record<string, EventShape>;
}

/** Counts as plain data: [day, tenant, event, count, [[property, counts by JSON_TYPES index]]]. */
export type Observations = Array<[string, string, string, number, Array<[string, number[]]>]>;

interface Counting {
  count: number;
  props: Map<string, number[]>;
}

const OBJECT = JSON_TYPES.indexOf('object');
const ARRAY = JSON_TYPES.indexOf('array');
/** Keys of one nested object counted at most: a map of ids to values would otherwise fill the bound. */
const MAX_NESTED_KEYS = 50;

/** Counts one value's JSON type under a path; returns the type's index (or -1 past the bound). */
function count(c: Counting, path: string, v: unknown): number {
  let counts = c.props.get(path);
  if (!counts) {
    if (c.props.size >= MAX_PROPERTIES) return -1;
    c.props.set(path, (counts = [0, 0, 0, 0, 0, 0, 0]));
  }
  const t = TYPE_INDEX.get(jsonType(v))!;
  counts[t]!++;
  return t;
}

function countKeys(c: Counting, prefix: string, o: Record<string, unknown>): void {
  let n = 0;
  for (const k in o) {
    if (++n > MAX_NESTED_KEYS) return;
    count(c, prefix + k, o[k]);
  }
}

/** Counts shapes in a request worker, cheaply: a map lookup per event and one per property. */
export class ObservationCounter {
  private readonly events = new Map<string, Counting>();
  private perTenant = new Map<string, number>();

  observe(day: string, tenant: string, event: string, values: Record<string, unknown>): void {
    const key = `${day}\u0000${tenant}\u0000${event}`;
    let c = this.events.get(key);
    if (!c) {
      const n = this.perTenant.get(tenant) ?? 0;
      if (n >= MAX_EVENTS) return;
      this.perTenant.set(tenant, n + 1);
      this.events.set(key, (c = { count: 0, props: new Map() }));
    }
    c.count++;
    for (const name in values) {
      const v = values[name];
      const type = count(c, name, v);
      // One level down, so a draft plan can describe nested objects and arrays (an order's products): an
      // object's keys as `name.key`, an array's first item as `name[]` and its keys as `name[].key`.
      if (type === OBJECT) countKeys(c, `${name}.`, v as Record<string, unknown>);
      else if (type === ARRAY && (v as unknown[]).length > 0) {
        const first = (v as unknown[])[0];
        if (count(c, `${name}[]`, first) === OBJECT) countKeys(c, `${name}[].`, first as Record<string, unknown>);
      }
    }
  }

  get size(): number {
    return this.events.size;
  }

  /** The counts so far as plain data, and a fresh start. */
  take(): Observations {
    const out: Observations = [];
    for (const [key, c] of this.events) {
      const [day, tenant, event] = key.split('\u0000') as [string, string, string];
      out.push([day, tenant, event, c.count, [...c.props]]);
    }
    this.events.clear();
    this.perTenant = new Map();
    return out;
  }
}

/**
 * An object's own entry, and setting one: event and property names come from clients, and a name such as
 * "__proto__" or "constructor" must be data, never the object's prototype or inherited members.
 */
export const own = <T>(o: Record<string, T>, key: string): T | undefined => (Object.hasOwn(o, key) ? o[key] : undefined);
export function setOwn<T>(o: Record<string, T>, key: string, value: T): T {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  return value;
}

/** Adds one event's counts to a shape. */
export function addShape(into: EventShape, count: number, props: Iterable<[string, Partial<Record<JsonType, number>> | number[]]>): void {
  into.count += count;
  for (const [name, counts] of props) {
    let p = own(into.properties, name);
    if (!p) {
      if (Object.keys(into.properties).length >= MAX_PROPERTIES) continue;
      p = setOwn(into.properties, name, {});
    }
    const entries: Array<[JsonType, number]> = Array.isArray(counts) ? counts.map((n, i) => [JSON_TYPES[i]!, n]) : (Object.entries(counts) as Array<[JsonType, number]>);
    for (const [t, n] of entries) if (n > 0) p[t] = (p[t] ?? 0) + n;
  }
}

export const schemaKey = keys.schemas;

/**
 * Merges workers' counts on the request thread and writes them to storage: one file per day, tenant and
 * node, so nodes never write the same object. A file is read once when its day is first touched in this
 * process, then kept in memory and rewritten whole (a day's shapes are kilobytes).
 */
export class SchemaRecorder {
  private readonly files = new Map<string, SchemaFile>();
  private readonly dirty = new Set<string>();
  private pending: Observations[] = [];

  constructor(private readonly store: ObjectStore, private readonly node: string) {}

  add(o: Observations): void {
    if (o.length > 0) this.pending.push(o);
  }

  /**
   * Writes what was added since the last flush. The files it needs are read first: if storage fails there,
   * nothing is counted yet and everything stays pending for the next flush; a failed write stays dirty.
   */
  async flush(): Promise<void> {
    const batches = this.pending;
    for (const batch of batches) {
      for (const [day, tenant] of batch) {
        const key = schemaKey(day, tenant, this.node);
        if (!this.files.has(key)) this.files.set(key, parseSchemaFile(await this.store.get(key)) ?? { version: 1, day, tenant, events: {} });
      }
    }
    // Every file is at hand: from here nothing fails before the batches are counted.
    this.pending = [];
    for (const batch of batches) {
      for (const [day, tenant, event, count, props] of batch) {
        const key = schemaKey(day, tenant, this.node);
        const file = this.files.get(key)!;
        let shape = own(file.events, event);
        if (!shape) {
          if (Object.keys(file.events).length >= MAX_EVENTS) continue;
          shape = setOwn(file.events, event, { count: 0, properties: {} });
        }
        addShape(shape, count, props);
        this.dirty.add(key);
      }
    }
    for (const key of [...this.dirty]) {
      await this.store.put(key, `${JSON.stringify(this.files.get(key))}\n`);
      this.dirty.delete(key);
    }
    // Only the newest two days are still being counted (events arrive on their receipt day); older days
    // leave memory once written.
    const days = [...new Set([...this.files.values()].map((f) => f.day))].sort();
    for (const [key, f] of this.files) if (f.day < days[days.length - 2]! && !this.dirty.has(key)) this.files.delete(key);
  }
}

/** A stored schema file, or undefined for none or one that is not one (statistics: it is started again). */
export function parseSchemaFile(body: Buffer | undefined): SchemaFile | undefined {
  if (!body) return undefined;
  try {
    const f = JSON.parse(body.toString('utf8')) as SchemaFile;
    return f && typeof f === 'object' && f.version === 1 && f.events && typeof f.events === 'object' ? f : undefined;
  } catch {
    return undefined;
  }
}

/** Every schema file of the given days, optionally of one tenant; files that do not parse are named apart. */
export async function readSchemas(store: ObjectStore, days: readonly string[], tenant?: string): Promise<{ files: SchemaFile[]; unreadable: string[] }> {
  const files: SchemaFile[] = [];
  const unreadable: string[] = [];
  for (const day of days) {
    for (const o of await store.list(keys.schemasDay(day, tenant))) {
      if (!o.key.endsWith('.json')) continue;
      const f = parseSchemaFile(await store.get(o.key));
      if (f) files.push(f);
      else unreadable.push(o.key);
    }
  }
  return { files, unreadable };
}

/** The shapes of several files merged per tenant and event. */
export function mergeSchemas(files: readonly SchemaFile[]): Map<string, Map<string, EventShape>> {
  const out = new Map<string, Map<string, EventShape>>();
  for (const f of files) {
    let events = out.get(f.tenant);
    if (!events) out.set(f.tenant, (events = new Map()));
    for (const [name, shape] of Object.entries(f.events)) {
      let into = events.get(name);
      if (!into) events.set(name, (into = { count: 0, properties: {} }));
      addShape(into, shape.count, Object.entries(shape.properties));
    }
  }
  return out;
}
