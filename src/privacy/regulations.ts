/**
 * Regulations: a tenant's privacy requests (Segment's Regulations API shape), kept in the bucket so every
 * node and every later run sees them: one object per regulation, `privacy/regulations/<tenant>/<id>.json`,
 * written by whoever accepts the request (the read side's API, `tracklake regulate`) and updated by the
 * erasure run (privacy/erase.ts).
 *
 * - `SUPPRESS`: messages from the subject are acknowledged and written nowhere, from the moment each
 *   collector reads the regulation (within privacyRefreshSeconds) on; what is already in a log is left out
 *   when it ships. `UNSUPPRESS` lifts it for what comes after.
 * - `DELETE`: every row about the subject written before the request is removed by the next erasure run.
 * - `SUPPRESS_WITH_DELETE`: both.
 *
 * A regulation keeps its subjects as keyed hashes (privacy/subjects.ts); a deletion also needs the plain ids
 * to find rows, so those are kept only until the erasure that needed them has finished, then removed.
 * The suppression lists are derived from the regulations (latest SUPPRESS or UNSUPPRESS per subject wins),
 * so there is no second file two nodes could write at once.
 */
import { randomUUID } from 'node:crypto';
import { keys } from '../lake/layout.js';
import type { Clock } from '../lib/clock.js';
import { isObject } from '../lib/json.js';
import type { ObjectInfo, ObjectStore } from '../storage/store.js';
import { SUBJECT_TYPES, subjectHash, type SubjectType } from './subjects.js';

export const REGULATION_TYPES = ['SUPPRESS', 'DELETE', 'SUPPRESS_WITH_DELETE', 'UNSUPPRESS'] as const;
export type RegulationType = (typeof REGULATION_TYPES)[number];
export const STATUSES = ['INITIALIZED', 'RUNNING', 'FINISHED', 'FAILED'] as const;
export type RegulationStatus = (typeof STATUSES)[number];

export const MAX_SUBJECTS = 5000;
export const MAX_ID_CHARS = 255;

export interface RegulationRequest {
  regulationType: RegulationType;
  subjectType: SubjectType;
  subjectIds: string[];
}

/** What an erasure did, per kind of file (lake/layout.ts names). */
export interface ErasureReport {
  rowsRemoved: Record<string, number>;
  filesRewritten: number;
  /** Files read to find the subjects' rows (the index answers for the others). */
  filesRead: number;
  daysRecomputed: string[];
  /** Devices found linked to a USER_ID subject: their anonymous rows went with the user's. */
  linkedDevices: number;
}

export interface Regulation {
  version: 1;
  id: string;
  tenant: string;
  regulationType: RegulationType;
  subjectType: SubjectType;
  /** Keyed hashes of the subjects, always. */
  subjects: string[];
  /** The plain ids, only while a deletion still needs them. */
  subjectIds?: string[];
  /** Hashes of devices linked to a USER_ID subject, found by the erasure (suppressed along with it). */
  linked?: string[];
  createdAt: number;
  status: RegulationStatus;
  /** Why the last attempt failed (the regulation stays RUNNING and is tried again on the next run). */
  lastError?: string;
  startedAt?: number;
  finishedAt?: number;
  report?: ErasureReport;
}

export const deletes = (t: RegulationType) => t === 'DELETE' || t === 'SUPPRESS_WITH_DELETE';
const suppresses = (t: RegulationType) => t === 'SUPPRESS' || t === 'SUPPRESS_WITH_DELETE';

export type Parsed<T> = { ok: true; value: T } | { ok: false; field: string; message: string };

/** Validates a request body; every mistake names its field. */
export function parseRegulationRequest(body: unknown): Parsed<RegulationRequest> {
  const bad = (field: string, message: string) => ({ ok: false as const, field, message });
  if (!isObject(body)) return bad('body', 'send a JSON object: {"regulationType", "subjectType", "subjectIds"}');
  const { regulationType, subjectType, subjectIds } = body as Record<string, unknown>;
  for (const k of Object.keys(body)) if (!['regulationType', 'subjectType', 'subjectIds'].includes(k)) return bad(k, 'is not a field of a regulation');
  if (typeof regulationType !== 'string' || !(REGULATION_TYPES as readonly string[]).includes(regulationType)) return bad('regulationType', `must be one of ${REGULATION_TYPES.join(', ')}`);
  if (typeof subjectType !== 'string' || !(SUBJECT_TYPES as readonly string[]).includes(subjectType)) return bad('subjectType', `must be one of ${SUBJECT_TYPES.join(', ')}`);
  if (!Array.isArray(subjectIds) || subjectIds.length === 0) return bad('subjectIds', 'must be a non-empty array of ids');
  if (subjectIds.length > MAX_SUBJECTS) return bad('subjectIds', `at most ${MAX_SUBJECTS} ids per regulation (${subjectIds.length} given)`);
  for (let i = 0; i < subjectIds.length; i++) {
    const id = subjectIds[i];
    if (typeof id !== 'string' || id === '') return bad(`subjectIds[${i}]`, 'must be a non-empty string');
    if (id.length > MAX_ID_CHARS) return bad(`subjectIds[${i}]`, `is over ${MAX_ID_CHARS} characters`);
  }
  return { ok: true, value: { regulationType: regulationType as RegulationType, subjectType: subjectType as SubjectType, subjectIds: [...new Set(subjectIds as string[])] } };
}

/** Ids sort by creation: a time prefix, then randomness. */
function newId(now: number): string {
  return `${now.toString(36).padStart(9, '0')}-${randomUUID().slice(0, 8)}`;
}

export class Regulations {
  private readonly reader: RegulationReader;

  constructor(private readonly store: ObjectStore, private readonly secret: string, private readonly clock: Clock) {
    this.reader = new RegulationReader(store);
  }

  async create(tenant: string, r: RegulationRequest): Promise<Regulation> {
    const now = this.clock.now();
    const reg: Regulation = {
      version: 1,
      id: newId(now),
      tenant,
      regulationType: r.regulationType,
      subjectType: r.subjectType,
      subjects: r.subjectIds.map((id) => subjectHash(this.secret, tenant, r.subjectType, id)),
      createdAt: now,
      // Suppressing needs nothing but the hashes: it is done as soon as it is stored.
      status: deletes(r.regulationType) ? 'INITIALIZED' : 'FINISHED',
    };
    if (deletes(r.regulationType)) reg.subjectIds = r.subjectIds;
    else reg.finishedAt = now;
    await this.save(reg);
    return reg;
  }

  save(reg: Regulation): Promise<void> {
    return this.store.put(keys.regulation(reg.tenant, reg.id), `${JSON.stringify(reg)}\n`);
  }

  async get(tenant: string, id: string): Promise<Regulation | undefined> {
    if (!/^[a-z0-9]{9}-[0-9a-f]{8}$/.test(id)) return undefined;
    const body = await this.store.get(keys.regulation(tenant, id));
    return body === undefined ? undefined : parseRegulation(body);
  }

  /**
   * A tenant's regulations (every tenant's without one), oldest first. A listing each time; only the
   * regulations whose ETag changed since the last call are read again.
   */
  async list(tenant?: string): Promise<Regulation[]> {
    const { byTenant } = await this.reader.read();
    const regs = tenant === undefined ? [...byTenant.values()].flat() : (byTenant.get(tenant) ?? []);
    return [...regs].sort(byCreation);
  }
}

export const byCreation = (a: Regulation, b: Regulation) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export function parseRegulation(body: Buffer): Regulation {
  const r = JSON.parse(body.toString('utf8')) as Regulation;
  if (!isObject(r) || r.version !== 1 || typeof r.id !== 'string' || !Array.isArray(r.subjects)) throw new Error('not a regulation (version 1)');
  return r;
}

/** What the regulations of one tenant mean for its collectors. */
export interface SuppressionState {
  /** Suppressed subject hash → since when, and by which regulation. */
  suppressed: Map<string, { since: number; regulateId: string }>;
  /** Subjects to delete → rows received before this instant are theirs to lose (the latest deletion's time). */
  erased: Map<string, number>;
}

/** The latest SUPPRESS or UNSUPPRESS of each subject wins; every deletion erases what came before it. */
export function suppressionState(regs: readonly Regulation[]): SuppressionState {
  const state: SuppressionState = { suppressed: new Map(), erased: new Map() };
  for (const r of [...regs].sort(byCreation)) {
    const subjects = [...r.subjects, ...(r.linked ?? [])];
    if (suppresses(r.regulationType)) for (const h of subjects) state.suppressed.set(h, { since: r.createdAt, regulateId: r.id });
    if (r.regulationType === 'UNSUPPRESS') for (const h of subjects) state.suppressed.delete(h);
    if (deletes(r.regulationType)) for (const h of subjects) state.erased.set(h, Math.max(state.erased.get(h) ?? 0, r.createdAt));
  }
  return state;
}

/** Per tenant with any, what its regulations say (the ship filter's and replay's input). */
export function statesByTenant(byTenant: ReadonlyMap<string, readonly Regulation[]>): Map<string, SuppressionState> {
  const states = new Map<string, SuppressionState>();
  for (const [tenant, regs] of byTenant) {
    const state = suppressionState(regs);
    if (state.suppressed.size > 0 || state.erased.size > 0) states.set(tenant, state);
  }
  return states;
}

/**
 * Every tenant's regulations, read incrementally: a listing each time, and only the objects whose ETag
 * changed are fetched again. This is what each collector runs every privacyRefreshSeconds.
 */
export class RegulationReader {
  private readonly cache = new Map<string, { etag: string; reg: Regulation }>();

  constructor(private readonly store: ObjectStore) {}

  /** tenant → its regulations; and whether anything changed since the last read. */
  async read(): Promise<{ byTenant: Map<string, Regulation[]>; changed: boolean }> {
    const listed: ObjectInfo[] = await this.store.list(keys.regulations());
    let changed = listed.length !== this.cache.size;
    const seen = new Set<string>();
    for (const o of listed) {
      seen.add(o.key);
      if (this.cache.get(o.key)?.etag === o.etag) continue;
      const body = await this.store.get(o.key);
      if (body === undefined) continue;
      try {
        this.cache.set(o.key, { etag: o.etag, reg: parseRegulation(body) });
        changed = true;
      } catch {
        // A file that is not a regulation is not ours to act on; it is skipped, not fatal to the door.
      }
    }
    for (const k of [...this.cache.keys()]) if (!seen.has(k)) this.cache.delete(k);
    const byTenant = new Map<string, Regulation[]>();
    for (const { reg } of this.cache.values()) {
      let list = byTenant.get(reg.tenant);
      if (!list) byTenant.set(reg.tenant, (list = []));
      list.push(reg);
    }
    return { byTenant, changed };
  }
}
