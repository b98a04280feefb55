/**
 * Tracking plans: the team's conventions (seed 002) and its planned events, as a YAML file compiled once into
 * checks that run on a raw Segment message. A plan is data: events with their properties as JSON Schema
 * (compiled by ajv, never interpreted per message), the seed's naming rules as configurable built-in checks,
 * and, per kind of violation, what to do with the event: allow it (and record the violation), omit the
 * unplanned properties, or block it.
 *
 * The collector applies a tenant's plan in its request workers (ingest/prepare.ts); plan/files.ts is what the
 * violations and blocked messages become.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../lib/errors.js';
import { isObject } from '../lib/json.js';

export const VIOLATION_TYPES = ['Unplanned-Event', 'Required-Missing', 'Datatype-Mismatch', 'Additional-Properties', 'Naming-Convention', 'Forbidden-Property', 'Invalid-Value'] as const;
export type ViolationType = (typeof VIOLATION_TYPES)[number];
export const ACTIONS = ['allow', 'omit', 'block'] as const;
export type Action = (typeof ACTIONS)[number];

/** A violation's type and action as two small numbers, for counting across threads; see violationOfCode. */
export const violationCode = (type: ViolationType, action: Action): [number, number] => [VIOLATION_TYPES.indexOf(type), ACTIONS.indexOf(action)];
export const violationOfCode = (type: number, action: number): { type: ViolationType; action: Action } => ({ type: VIOLATION_TYPES[type]!, action: ACTIONS[action]! });

export interface Violation {
  type: ViolationType;
  /** The field as the message knows it: `event`, `properties.episode_id`, `traits.user_type`. */
  field: string;
  message: string;
}

/** What a plan decides for one message: its violations, and the strongest action they call for. */
export interface Verdict {
  violations: Violation[];
  action: Action;
  /** With `omit`: the top-level properties to drop. */
  omit: string[];
}

/** Object-Action, lower case, a past-tense action last ("user signed up", "call started", "order completed"). */
export const DEFAULT_EVENT_NAME = '^[a-z][a-z0-9_]*( [a-z][a-z0-9_]*)* ([a-z]+ed|sent|paid|bought|made|gave|took|won|lost|left|read|saw|set|began|shown|seen|done|sold|met|ran|kept|found|got|put|held|heard|told|went|wrote)( (up|in|out|off|on|down|over|back|through))?$';

const actionSchema = z.enum(['allow', 'omit', 'block']);
const jsonSchema = z.record(z.string(), z.unknown());

const planSchema = z.strictObject({
  version: z.literal(1),
  description: z.string().optional(),
  events: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(200),
        description: z.string().optional(),
        /** JSON Schema of `properties` (an object schema). */
        properties: jsonSchema.optional(),
      }),
    )
    .default([]),
  identify: z.strictObject({ traits: jsonSchema }).optional(),
  conventions: z
    .strictObject({
      /** The event-name rule: a regular expression (default: lower-case Object-Action, past-tense action). */
      eventName: z.string().min(1).default(DEFAULT_EVENT_NAME),
      /** Names that say "flatten me": `call ended by patient` is `call ended` with a `type`. */
      flatten: z.array(z.string().min(1)).default([' by ']),
      /** property → the name to use instead (seed 002: never `channel_id`, always `episode_id`). */
      forbiddenProperties: z.record(z.string().min(1), z.string().min(1)).default({}),
      /** The allowed values of `user_type`, wherever it is passed. */
      userTypes: z.array(z.string().min(1)).optional(),
      /** Properties every event (events: ["*"]) or named events (globs: "call *") must carry. */
      requiredProperties: z.array(z.strictObject({ property: z.string().min(1), events: z.array(z.string().min(1)).min(1) })).default([]),
    })
    .prefault({}),
  enforcement: z.partialRecord(z.enum(VIOLATION_TYPES), actionSchema).default({}),
});

export type Plan = z.infer<typeof planSchema>;

/** A plan that cannot be used: names the file, the place in it, and the problem. */
export class PlanError extends Error {
  constructor(readonly file: string, readonly place: string, readonly problem: string) {
    super(`tracking plan ${file}${place ? ` at ${place}` : ''}: ${problem}`);
  }
}

/** A tenant's plan: its file and text (what request workers compile) and the compiled checks. */
export interface TenantPlan {
  file: string;
  text: string;
  compiled: CompiledPlan;
}

/**
 * The configuration's plans (tenant → file), each file read and compiled once. A plan that cannot be used
 * is a ConfigError naming the tenant's setting, the file, the place and the problem: start-up stops (exit 2).
 */
export function tenantPlans(plans: Readonly<Record<string, string>>): Map<string, TenantPlan> {
  const byFile = new Map<string, TenantPlan>();
  const out = new Map<string, TenantPlan>();
  for (const [tenant, file] of Object.entries(plans)) {
    let p = byFile.get(file);
    if (!p) {
      try {
        const text = readPlanText(file);
        p = { file, text, compiled: parsePlan(text, file) };
      } catch (e) {
        if (e instanceof PlanError) throw new ConfigError(`plans.${tenant}`, e.message);
        throw e;
      }
      byFile.set(file, p);
    }
    out.set(tenant, p);
  }
  return out;
}

function readPlanText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new PlanError(file, '', `cannot read it: ${(e as Error).message}`);
  }
}

/** Reads and validates a plan file (YAML; JSON is YAML too). */
export function loadPlan(file: string): CompiledPlan {
  return parsePlan(readPlanText(file), file);
}

export function parsePlan(text: string, file = '(plan)'): CompiledPlan {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const at = lines.linePos(e.pos[0]);
    throw new PlanError(file, `line ${at.line}, column ${at.col}`, e.message.split('\n')[0]!);
  }
  const parsed = planSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const node = doc.getIn(issue.path, true) as { range?: [number, number, number] } | undefined;
    const where = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : '');
    const line = node?.range ? ` (line ${lines.linePos(node.range[0]).line})` : '';
    throw new PlanError(file, `${where}${line}`, issue.message);
  }
  return compilePlan(parsed.data, file);
}

/** A glob over event names: `*` is any text. */
const glob = (pattern: string) => new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

export interface CompiledPlan {
  plan: Plan;
  /** The file it came from. */
  file: string;
  /**
   * The verdict on one message: its type, its event name (track calls) and its properties (for identify
   * calls, its traits).
   */
  checkValues(type: string, event: string | undefined, values: Record<string, unknown>): Verdict;
  /** The same, on a Segment message as received (track, identify, ...). */
  check(message: Record<string, unknown>): Verdict;
}

const STRENGTH: Record<Action, number> = { allow: 0, omit: 1, block: 2 };

export function compilePlan(plan: Plan, file = '(plan)'): CompiledPlan {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const compile = (schema: Record<string, unknown>, place: string): ValidateFunction => {
    try {
      return ajv.compile(schema);
    } catch (e) {
      throw new PlanError(file, place, `not a valid JSON Schema: ${(e as Error).message}`);
    }
  };
  let eventName: RegExp;
  try {
    eventName = new RegExp(plan.conventions.eventName);
  } catch (e) {
    throw new PlanError(file, 'conventions.eventName', `not a regular expression: ${(e as Error).message}`);
  }
  const events = new Map<string, ValidateFunction | undefined>();
  for (const [i, e] of plan.events.entries()) {
    if (events.has(e.name)) throw new PlanError(file, `events.${i}.name`, `"${e.name}" is planned twice`);
    events.set(e.name, e.properties ? compile(e.properties, `events.${i}.properties`) : undefined);
  }
  const traits = plan.identify ? compile(plan.identify.traits, 'identify.traits') : undefined;
  const required = plan.conventions.requiredProperties.map((r) => ({ property: r.property, events: r.events.map(glob) }));
  const forbidden = Object.entries(plan.conventions.forbiddenProperties);
  const userTypes = plan.conventions.userTypes ? new Set(plan.conventions.userTypes) : undefined;
  const actionOf = (t: ViolationType): Action => plan.enforcement[t] ?? 'allow';

  // What an event name alone decides (its naming and planning violations, its schema, the properties it
  // must carry) is worked out once per name: a regular expression per message was a measurable part of
  // the collector's time (bench:ingest's plan run). Names beyond the bound are worked out each time.
  interface NameFacts {
    violations: Violation[];
    validate: ValidateFunction | undefined;
    required: string[];
  }
  const byName = new Map<string, NameFacts>();
  const factsOf = (name: string): NameFacts => {
    let f = byName.get(name);
    if (f) return f;
    const violations: Violation[] = [];
    if (!eventName.test(name)) violations.push({ type: 'Naming-Convention', field: 'event', message: `"${name}" is not an Object-Action name in lower case with a past-tense action (conventions.eventName)` });
    for (const sep of plan.conventions.flatten) {
      if (name.includes(sep)) violations.push({ type: 'Naming-Convention', field: 'event', message: `"${name}": flatten it into "${name.slice(0, name.indexOf(sep))}" with a "type" property` });
    }
    if (!events.has(name)) violations.push({ type: 'Unplanned-Event', field: 'event', message: `"${name}" is not in the tracking plan` });
    f = { violations, validate: events.get(name), required: required.filter((r) => r.events.some((g) => g.test(name))).map((r) => r.property) };
    if (byName.size < 10_000) byName.set(name, f);
    return f;
  };

  const compiled: CompiledPlan = {
    plan,
    file,
    check(message) {
      const bag = message.type === 'identify' ? 'traits' : 'properties';
      const values = isObject(message[bag]) ? (message[bag] as Record<string, unknown>) : {};
      return compiled.checkValues(String(message.type), typeof message.event === 'string' ? message.event : undefined, values);
    },
    checkValues(type, event, values) {
      // Most messages have no violation: nothing is allocated for them (no closures either).
      let violations: Violation[] | undefined;
      let omit: Set<string> | undefined;
      const bag = type === 'identify' ? 'traits' : 'properties';
      let validate: ValidateFunction | undefined;
      if (type === 'track') {
        const name = event ?? '';
        const f = factsOf(name);
        if (f.violations.length > 0) (violations ??= []).push(...f.violations);
        validate = f.validate;
        for (const property of f.required) {
          if (values[property] === undefined) (violations ??= []).push({ type: 'Required-Missing', field: `${bag}.${property}`, message: `"${name}" must carry "${property}"` });
        }
      } else if (type === 'identify') {
        validate = traits;
      }
      if (validate && !validate(values)) (violations ??= []).push(...schemaViolations(validate.errors ?? [], bag, values, (omit ??= new Set())));
      for (const [bad, good] of forbidden) {
        if (values[bad] !== undefined) {
          (violations ??= []).push({ type: 'Forbidden-Property', field: `${bag}.${bad}`, message: `"${bad}" is never passed; use "${good}"` });
          (omit ??= new Set()).add(bad);
        }
      }
      if (userTypes && values.user_type !== undefined && !userTypes.has(String(values.user_type))) {
        (violations ??= []).push({ type: 'Invalid-Value', field: `${bag}.user_type`, message: `"${String(values.user_type)}" is not a user type (${[...userTypes].join(', ')})` });
      }
      if (violations === undefined) return CLEAN;
      // A property both the schema and a convention require is missing once, not twice.
      if (violations.length > 1) violations = violations.filter((v, i, all) => v.type !== 'Required-Missing' || all.findIndex((w) => w.type === v.type && w.field === v.field) === i);
      const action = violations.reduce<Action>((a, v) => (STRENGTH[actionOf(v.type)] > STRENGTH[a] ? actionOf(v.type) : a), 'allow');
      return { violations, action, omit: action === 'omit' && omit ? [...omit].sort() : [] };
    },
  };
  return compiled;
}

/** The verdict on a message without violations (shared: verdicts are read, never changed). */
const CLEAN: Verdict = Object.freeze({ violations: Object.freeze([]) as unknown as Violation[], action: 'allow', omit: Object.freeze([]) as unknown as string[] });

/** ajv's errors as the field's violation types; unplanned properties are the ones `omit` drops. */
function schemaViolations(errors: ErrorObject[], bag: string, values: Record<string, unknown>, omit: Set<string>): Violation[] {
  return errors.map((e) => {
    const path = e.instancePath.replace(/^\//, '').replaceAll('/', '.');
    const field = `${bag}${path ? `.${path}` : ''}`;
    switch (e.keyword) {
      case 'required':
        return { type: 'Required-Missing', field: `${field}.${(e.params as { missingProperty: string }).missingProperty}`, message: e.message ?? 'is required' };
      case 'type':
        return { type: 'Datatype-Mismatch', field, message: e.message ?? 'has the wrong type' };
      case 'additionalProperties': {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        if (!path && extra in values) omit.add(extra);
        return { type: 'Additional-Properties', field: `${field}.${extra}`, message: `"${extra}" is not planned` };
      }
      default:
        return { type: 'Invalid-Value', field, message: e.message ?? `fails ${e.keyword}` };
    }
  });
}
