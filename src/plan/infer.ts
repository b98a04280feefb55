/**
 * `tracklake plan infer`: a draft plan from a tenant's observed schemas, so a team starts from its real
 * traffic. Every event seen becomes a planned event; a property becomes required when every occurrence of
 * the event carried it, and gets the JSON type(s) it was seen with. The draft accepts the traffic it was
 * drawn from (no `additionalProperties: false`, every violation allowed): tightening it is the team's call.
 */
import { Document, type YAMLMap, type YAMLSeq } from 'yaml';
import { DEFAULT_EVENT_NAME } from './plan.js';
import { IDENTIFY, JSON_TYPES, own, setOwn, type EventShape, type JsonType } from './observe.js';

export interface InferSource {
  tenant: string;
  /** The days the schemas cover, for the draft's description. */
  from: string;
  to: string;
  events: ReadonlyMap<string, EventShape>;
}

/** Seed 002's forbidden property and the one to use: the draft plans the latter, never the former. */
const FORBIDDEN: Readonly<Record<string, string>> = { channel_id: 'episode_id' };

type Counts = Partial<Record<JsonType, number>>;
const seenOf = (c: Counts) => Object.values(c).reduce((a: number, n) => a + (n ?? 0), 0);

/** The JSON types a property was seen with; an integer is a number, so both together are a number. */
function typesOf(c: Counts): JsonType[] {
  const types = JSON_TYPES.filter((t) => (c[t] ?? 0) > 0);
  return types.includes('number') ? types.filter((t) => t !== 'integer') : types;
}

/**
 * The schema of the object at `prefix` ('' for the properties, `products[].` for an order's items) seen
 * `total` times: its direct keys with their types, those seen every time required, and one level down where
 * the counts go (observe.ts counts `parent.key`, `parent[]` and `parent[].key`).
 */
function objectSchema(all: Record<string, Counts>, prefix: string, total: number): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  const required: string[] = [];
  for (const path of Object.keys(all).sort()) {
    if (!path.startsWith(prefix)) continue;
    const name = path.slice(prefix.length);
    if (name.includes('.') || name.endsWith('[]') || Object.hasOwn(FORBIDDEN, name)) continue;
    const counts = own(all, path)!;
    const types = typesOf(counts);
    const schema: Record<string, unknown> = { type: types.length === 1 ? types[0]! : types };
    if (prefix === '' && types.includes('object')) Object.assign(schema, nested(objectSchema(all, `${name}.`, counts.object ?? 0)));
    const items = prefix === '' && types.includes('array') ? own(all, `${name}[]`) : undefined;
    if (items) {
      const itemTypes = typesOf(items);
      const item: Record<string, unknown> = { type: itemTypes.length === 1 ? itemTypes[0]! : itemTypes };
      if (itemTypes.includes('object')) Object.assign(item, nested(objectSchema(all, `${name}[].`, items.object ?? 0)));
      schema.items = item;
    }
    setOwn(properties, name, schema);
    if (seenOf(counts) >= total && !types.includes('null')) required.push(name);
  }
  return { type: 'object', ...(required.length > 0 ? { required } : {}), properties };
}

/** A nested object's required list and properties, when any were seen. */
function nested(schema: Record<string, unknown>): Record<string, unknown> {
  const { type: _type, ...rest } = schema;
  return Object.keys(schema.properties as object).length > 0 ? rest : {};
}

/** The JSON Schema of one event's observed properties (forbidden ones left out: they are violations). */
export function inferSchema(shape: EventShape): Record<string, unknown> {
  return objectSchema(shape.properties, '', shape.count);
}

/** The draft plan as YAML text. */
export function inferPlan(src: InferSource): string {
  const names = [...src.events.keys()].filter((n) => n !== IDENTIFY).sort();
  const total = [...src.events.values()].reduce((a, s) => a + s.count, 0);
  const identify = src.events.get(IDENTIFY);
  const plan: Record<string, unknown> = {
    version: 1,
    description: `Drafted by tracklake plan infer from ${total} calls of tenant ${src.tenant}, ${src.from}..${src.to}`,
    events: names.map((name) => ({ name, description: `Seen ${src.events.get(name)!.count} times`, properties: inferSchema(src.events.get(name)!) })),
  };
  if (identify) plan.identify = { traits: inferSchema(identify) };
  // The built-in event-name rule applies unless replaced; seed 002's forbidden property is spelled out.
  plan.conventions = { forbiddenProperties: { ...FORBIDDEN } };
  plan.enforcement = {};
  const doc = new Document(plan);
  // Names that break the built-in event-name rule are kept (they are the traffic) and marked for renaming.
  const rule = new RegExp(DEFAULT_EVENT_NAME);
  const items = (doc.get('events') as YAMLSeq<YAMLMap>).items;
  names.forEach((name, i) => {
    if (!rule.test(name) || name.includes(' by ')) items[i]!.commentBefore = ' Breaks the naming conventions (`tracklake plan lint` says how): rename it, or flatten it with a "type".';
  });
  doc.commentBefore =
    ' A draft tracking plan (README, "Tracking plans"). Review it: rename events that break the conventions,\n' +
    ' add descriptions, add `additionalProperties: false` where the properties are complete, then set\n' +
    ' enforcement (allow, omit or block per violation type) and attach it to the tenant with `plans`.';
  return doc.toString({ lineWidth: 0 });
}
