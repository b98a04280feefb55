/** The read side's query model: every mistake is a 400 that names it, and a token's scope is part of every query. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseQuery, resolveRange, type QueryResult } from '../src/query/model.js';

const METRICS = ['view', 'share', 'chat', 'sales'];
const TODAY = '2026-03-15';
const tenantScope = { tenant: 'shop', exp: 0, access: 'read' as const };
const merchantScope = { tenant: 'shop', merchant: 'm1', exp: 0, access: 'read' as const };
const parse = (body: unknown, scope = tenantScope) => parseQuery(body, scope, METRICS, TODAY);
const refused = (r: QueryResult, status: number, pattern: RegExp) => {
  assert.ok(!r.ok, 'refused');
  assert.equal(r.status, status);
  assert.match(r.message, pattern);
};

describe('the query model', () => {
  it('normalises a query: defaults, ranges ending today, the token\'s tenant', () => {
    const r = parse({ metrics: ['view', 'chat'], dimensions: ['product'], order_by: [['view', 'desc']] });
    assert.ok(r.ok);
    assert.deepEqual(r.query, {
      metrics: ['view', 'chat'], dateRange: { from: '2026-02-14', to: TODAY }, dimensions: ['product'], filters: [],
      orderBy: [['view', 'desc']], limit: 100, offset: 0, compare: null, tenant: 'shop', merchant: null,
    });
  });

  it('resolves every named range and a custom one', () => {
    assert.deepEqual(resolveRange('7d', TODAY), { from: '2026-03-09', to: TODAY });
    assert.deepEqual(resolveRange('30d', TODAY), { from: '2026-02-14', to: TODAY });
    assert.deepEqual(resolveRange('month', TODAY), { from: '2026-03-01', to: TODAY });
    assert.deepEqual(resolveRange('year', TODAY), { from: '2026-01-01', to: TODAY });
    assert.deepEqual(resolveRange('all', TODAY), { from: null, to: TODAY });
    assert.deepEqual(resolveRange(['2026-02-01', '2026-02-28'], TODAY), { from: '2026-02-01', to: '2026-02-28' });
  });

  it('names each mistake with a 400', () => {
    refused(parse({ metrics: ['visits'] }), 400, /Unknown metric "visits"/);
    refused(parse({ metrics: [] }), 400, /metrics/);
    refused(parse({ metrics: ['view'], dimensions: ['source'] }), 400, /Metric "view" has no dimension "source"/);
    refused(parse({ metrics: ['sessions'], dimensions: ['product'] }), 400, /Metric "sessions" has no dimension "product"/);
    refused(parse({ metrics: ['view', 'sessions'], dimensions: ['merchant'] }), 400, /has no dimension "merchant"/);
    refused(parse({ metrics: ['view'], date_range: '14d' }), 400, /date_range/);
    refused(parse({ metrics: ['view'], date_range: ['2026-02-30', '2026-03-01'] }), 400, /date_range/);
    refused(parse({ metrics: ['view'], date_range: ['2026-03-02', '2026-03-01'] }), 400, /starts .* after it ends/);
    refused(parse({ metrics: ['view'], limit: 10_001 }), 400, /limit/);
    refused(parse({ metrics: ['view'], limit: 0 }), 400, /limit/);
    refused(parse({ metrics: ['view'], offset: -1 }), 400, /offset/);
    refused(parse({ metrics: ['view'], order_by: [['chat', 'desc']] }), 400, /neither a metric nor a dimension/);
    refused(parse({ metrics: ['view'], filters: [['like', 'product', ['p']]] }), 400, /filter/);
    refused(parse({ metrics: ['view'], filters: [['is', 'time:day', ['2026-03-01']]] }), 400, /Cannot filter on "time:day"/);
    refused(parse({ metrics: ['view'], compare: 'last_year' }), 400, /compare/);
    refused(parse({ metrics: ['view'], date_range: 'all', compare: 'previous_period' }), 400, /compare/);
    refused(parse({ metrics: ['view'], metric: 'x' }), 400, /Unknown field "metric"/);
    refused(parse([1, 2]), 400, /JSON object/);
  });

  it('takes SQL-like filter values as plain values', () => {
    const r = parse({ metrics: ['view'], filters: [['is', 'product', ["p1' OR '1'='1", 'p2; DROP TABLE x']]] });
    assert.ok(r.ok);
    assert.deepEqual(r.query.filters, [{ op: 'is', dimension: 'product', values: ["p1' OR '1'='1", 'p2; DROP TABLE x'] }]);
  });

  it("limits a merchant token to its merchant: another merchant's filter is 403, and so are session metrics", () => {
    const own = parse({ metrics: ['view'], dimensions: ['product'], filters: [['is', 'merchant', ['m1']]] }, merchantScope);
    assert.ok(own.ok);
    assert.equal(own.query.merchant, 'm1');
    assert.ok(parse({ metrics: ['view'] }, merchantScope).ok, 'no filter: the scope alone limits it');
    refused(parse({ metrics: ['view'], filters: [['is', 'merchant', ['m1', 'm2']]] }, merchantScope), 403, /another/);
    refused(parse({ metrics: ['sessions'] }, merchantScope), 403, /merchant token/);
  });
});
