/**
 * The regulations API on the read side (Segment's shape): a privacy token's tenant files requests to
 * suppress or delete its users and follows them. The tenant comes from the token alone; read tokens and
 * merchant tokens get 403 here, and privacy tokens get 403 everywhere else (query/server.ts).
 */
import type { FastifyInstance } from 'fastify';
import { sendError } from '../api/server.js';
import { parseRegulationRequest, type Regulation, type Regulations, suppressionState } from '../privacy/regulations.js';
import { SUBJECT_TYPES, subjectHash, type SubjectType } from '../privacy/subjects.js';

/** A regulation as the API shows it: never its plain ids (they are only kept while a deletion needs them). */
export function regulationView(r: Regulation) {
  return {
    regulateId: r.id,
    regulationType: r.regulationType,
    subjectType: r.subjectType,
    subjects: r.subjects.length,
    status: r.status,
    ...(r.lastError ? { reason: r.lastError } : {}),
    createdAt: new Date(r.createdAt).toISOString(),
    ...(r.startedAt ? { startedAt: new Date(r.startedAt).toISOString() } : {}),
    ...(r.finishedAt ? { finishedAt: new Date(r.finishedAt).toISOString() } : {}),
    ...(r.report ? { result: r.report } : {}),
  };
}

export function registerRegulationRoutes(app: FastifyInstance, regulations: Regulations, secret: string): void {
  app.post('/api/v1/regulations', async function createRegulation(req, reply) {
    const parsed = parseRegulationRequest(req.body);
    if (!parsed.ok) return sendError(reply, 'invalid_regulation', `"${parsed.field}" ${parsed.message}.`);
    const reg = await regulations.create(req.scope!.tenant, parsed.value);
    return reply.code(202).send({ regulateId: reg.id, status: reg.status });
  });

  app.get('/api/v1/regulations', async function listRegulations(req) {
    return { regulations: (await regulations.list(req.scope!.tenant)).map(regulationView) };
  });

  app.get('/api/v1/regulations/:id', async function showRegulation(req, reply) {
    const reg = await regulations.get(req.scope!.tenant, (req.params as { id: string }).id);
    if (!reg) return sendError(reply, 'not_found', 'No regulation of this tenant has that id.');
    return regulationView(reg);
  });

  /**
   * What is suppressed: per subject, its keyed hash, since when and by which regulation. The ids themselves
   * are not kept; `?subjectType=USER_ID&subjectId=u1` asks about one id.
   */
  app.get('/api/v1/suppressions', async function listSuppressions(req, reply) {
    const { subjectType, subjectId } = req.query as { subjectType?: string; subjectId?: string };
    const state = suppressionState(await regulations.list(req.scope!.tenant));
    const rows = [...state.suppressed].map(([hash, s]) => ({ subject: hash, since: new Date(s.since).toISOString(), regulateId: s.regulateId }));
    if (subjectId === undefined && subjectType === undefined) return { suppressions: rows };
    if (subjectId === undefined || subjectId === '' || !(SUBJECT_TYPES as readonly string[]).includes(subjectType ?? '')) {
      return sendError(reply, 'invalid_regulation', `Ask about one subject with subjectType (${SUBJECT_TYPES.join(' or ')}) and subjectId together.`);
    }
    const hash = subjectHash(secret, req.scope!.tenant, subjectType as SubjectType, subjectId);
    return { suppressions: rows.filter((r) => r.subject === hash), suppressed: state.suppressed.has(hash) };
  });
}
