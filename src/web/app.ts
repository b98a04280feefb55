/**
 * The dashboard: one page over the query API. Its state lives in the address (range, chosen stat, filters,
 * funnel steps, flow event), so a view reloads, bookmarks and shares as it is; the token lives in session
 * storage, never in the address. Charts are SVG from Observable Plot, bundled at build time.
 */
import * as Plot from '@observablehq/plot';

// API answers as parsed JSON: their shapes are the API's, documented in the README.
type Json = any;
interface Meta {
  tenant: string;
  merchant: string | null;
  today: string;
  metrics: { aggregates: string[]; sessions: string[] };
  events: string[];
  computed_through: { aggregates: string | null; sessions: string | null };
}

const TOKEN_KEY = 'tracklake-token';
const LABELS: Record<string, string> = { view: 'Views', share: 'Shares', chat: 'Chats', sessions: 'Sessions', bounce_rate: 'Bounce rate', avg_session_seconds: 'Visit duration', events: 'Events' };
const AGG_FILTERS = ['merchant', 'product'];
const SESSION_FILTERS = ['source', 'devicetype', 'landing_page', 'merchant', 'product'];
const FILTER_KEYS = ['merchant', 'product', 'source', 'devicetype', 'landing_page'];
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

// ---- token -------------------------------------------------------------------------------------------
function takeToken(): string | null {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    // Out of the address bar: it must not end up in bookmarks, shared links or the history.
    url.searchParams.delete('token');
    history.replaceState(null, '', url);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function call(path: string, body?: unknown, accept = 'application/json'): Promise<Response> {
  const token = sessionStorage.getItem(TOKEN_KEY) ?? '';
  const res = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) {
    const err = (await res.json().catch(() => ({}))) as Json;
    throw new ApiError(res.status, err.message ?? `HTTP ${res.status}`);
  }
  return res;
}
const post = async (path: string, body: unknown): Promise<Json> => (await call(path, body)).json();

// ---- state in the address ---------------------------------------------------------------------------
interface State {
  /** Which page: the overview (stats, tables, funnel, flow) or the events and their plan health. */
  view: 'overview' | 'events';
  range: string;
  stat: string;
  filters: Record<string, string>;
  steps: string;
  flow: string;
}

function readState(): State {
  const p = new URLSearchParams(location.search);
  const filters: Record<string, string> = {};
  for (const k of FILTER_KEYS) if (p.get(k) !== null) filters[k] = p.get(k)!;
  return { view: p.get('view') === 'events' ? 'events' : 'overview', range: p.get('range') ?? '30d', stat: p.get('stat') ?? 'view', filters, steps: p.get('steps') ?? 'load,view,chat,order', flow: p.get('flow') ?? 'view' };
}

function writeState(s: State): void {
  const p = new URLSearchParams();
  if (s.view !== 'overview') p.set('view', s.view);
  if (s.range !== '30d') p.set('range', s.range);
  if (s.stat !== 'view') p.set('stat', s.stat);
  for (const [k, v] of Object.entries(s.filters)) p.set(k, v);
  if (s.steps !== 'load,view,chat,order') p.set('steps', s.steps);
  if (s.flow !== 'view') p.set('flow', s.flow);
  const q = p.toString();
  history.pushState(null, '', q ? `?${q}` : location.pathname);
}

/** The API's date_range for the state's range: a preset name, or two days. */
function dateRange(range: string): string | [string, string] {
  const custom = /^(\d{4}-\d{2}-\d{2}),(\d{4}-\d{2}-\d{2})$/.exec(range);
  return custom ? [custom[1]!, custom[2]!] : range;
}

const filtersFor = (s: State, allowed: string[]) => Object.entries(s.filters).filter(([k]) => allowed.includes(k)).map(([k, v]) => ['is', k, [v]]);

// ---- formatting ---------------------------------------------------------------------------------------
const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
function format(metric: string, v: number): string {
  if (metric === 'bounce_rate') return `${(v * 100).toFixed(1)}%`;
  if (metric === 'avg_session_seconds') return `${Math.floor(v / 60)}m ${Math.round(v % 60)}s`;
  return Number.isInteger(v) ? integer.format(v) : v.toFixed(2);
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

// ---- panels -------------------------------------------------------------------------------------------
let meta: Meta;
let state: State;

function renderFilters(): void {
  const box = $('filters');
  box.replaceChildren(
    ...Object.entries(state.filters).map(([k, v]) => {
      const remove = el('button', { type: 'button', 'aria-label': `Remove ${k} filter` }, '×');
      remove.onclick = () => {
        delete state.filters[k];
        navigate();
      };
      return el('span', { class: 'chip', 'data-filter': k }, `${k.replace('_', ' ')} is ${v || '(none)'}`, remove);
    }),
  );
}

async function renderStats(): Promise<void> {
  const range = dateRange(state.range);
  const compare = state.range !== 'all' ? { compare: 'previous_period' } : {};
  const aggs = meta.metrics.aggregates.slice(0, 3);
  const sessions = meta.metrics.sessions.length > 0 ? ['sessions', 'bounce_rate'] : [];
  const [a, s] = await Promise.all([
    post('/api/v1/query', { metrics: aggs, date_range: range, filters: filtersFor(state, AGG_FILTERS), ...compare }),
    sessions.length > 0 ? post('/api/v1/query', { metrics: sessions, date_range: range, filters: filtersFor(state, SESSION_FILTERS), ...compare }) : null,
  ]);
  const cards: HTMLElement[] = [];
  const add = (metrics: string[], r: Json) => {
    metrics.forEach((m, i) => {
      const value = r.results[0]?.metrics[i] ?? 0;
      const prev = r.results[0]?.comparison?.[i];
      const card = el('button', { class: 'stat', type: 'button', 'aria-pressed': String(state.stat === m) },
        el('span', { class: 'label' }, LABELS[m] ?? m),
        el('span', { class: 'value', 'data-stat': m, 'data-value': String(value) }, format(m, value)),
        el('span', { class: 'change' }, change(m, value, prev)));
      const dir = prev === undefined || prev === value ? '' : (value > prev) !== (m === 'bounce_rate') ? 'up' : 'down';
      if (dir) card.querySelector('.change')!.classList.add(dir);
      card.onclick = () => {
        state.stat = m;
        navigate();
      };
      cards.push(card);
    });
  };
  add(aggs, a);
  if (s) add(sessions, s);
  $('stats').replaceChildren(...cards);
}

function change(metric: string, value: number, prev: number | undefined): string {
  if (prev === undefined) return '';
  if (metric === 'bounce_rate') return `${value >= prev ? '+' : ''}${((value - prev) * 100).toFixed(1)} pts vs previous period`;
  if (prev === 0) return value === 0 ? 'no change' : 'new vs previous period';
  const pct = ((value - prev) / prev) * 100;
  return `${pct >= 0 ? '+' : ''}${pct.toFixed(0)}% vs previous period`;
}

async function renderChart(): Promise<void> {
  const m = state.stat;
  const isSession = meta.metrics.sessions.includes(m);
  const r = await post('/api/v1/query', { metrics: [m], date_range: dateRange(state.range), dimensions: ['time:day'], filters: filtersFor(state, isSession ? SESSION_FILTERS : AGG_FILTERS), limit: 10000 });
  $('chart-title').textContent = `${LABELS[m] ?? m} per day`;
  const byDay = new Map<string, number>(r.results.map((x: Json) => [x.dimensions[0], x.metrics[0]]));
  // A series has every day of its range, zero where nothing happened.
  const [from, to] = r.query.date_range as [string | null, string];
  const first = from ?? [...byDay.keys()].sort()[0] ?? to;
  const data: Array<{ date: Date; value: number }> = [];
  for (let d = new Date(`${first}T00:00:00Z`); d <= new Date(`${to}T00:00:00Z`); d = new Date(d.getTime() + 86_400_000)) {
    data.push({ date: d, value: byDay.get(d.toISOString().slice(0, 10)) ?? 0 });
  }
  const chart = Plot.plot({
    height: 240,
    marginLeft: 50,
    width: Math.min(1150, $('chart').clientWidth || 900),
    y: { grid: true, label: null, tickFormat: m === 'bounce_rate' ? '.0%' : '~s' },
    // Whole days only: a tick per day up to a week, fewer (never between days) beyond.
    x: { label: null, type: 'utc', ticks: Math.min(data.length, 8), tickFormat: data.length > 400 ? '%b %Y' : '%b %-d' },
    marks: [Plot.areaY(data, { x: 'date', y: 'value', fill: '#c7d2fe', fillOpacity: 0.6 }), Plot.lineY(data, { x: 'date', y: 'value', stroke: '#4f46e5' }), Plot.ruleY([0]), Plot.tip(data, Plot.pointerX({ x: 'date', y: 'value' }))],
  });
  $('chart').replaceChildren(chart);
}

interface TableSpec {
  name: string;
  title: string;
  dimension: string;
  metrics: string[];
  filters: string[];
}

function tableSpecs(): TableSpec[] {
  const aggs = meta.metrics.aggregates.slice(0, 3);
  const specs: TableSpec[] = [{ name: 'products', title: 'Top products', dimension: 'product', metrics: aggs, filters: AGG_FILTERS }];
  if (meta.merchant === null) specs.push({ name: 'merchants', title: 'Top merchants', dimension: 'merchant', metrics: aggs, filters: AGG_FILTERS });
  if (meta.metrics.sessions.length > 0) {
    for (const [name, title, dimension] of [['sources', 'Sources', 'source'], ['devices', 'Device types', 'devicetype'], ['pages', 'Landing pages', 'landing_page']] as const) {
      specs.push({ name, title, dimension, metrics: ['sessions', 'bounce_rate'], filters: SESSION_FILTERS });
    }
  }
  return specs;
}

async function renderTable(spec: TableSpec): Promise<HTMLElement> {
  const body = { metrics: spec.metrics, date_range: dateRange(state.range), dimensions: [spec.dimension], filters: filtersFor(state, spec.filters), limit: 10 };
  const r = await post('/api/v1/query', body);
  const download = el('button', { type: 'button', 'data-export': spec.name }, 'CSV');
  download.onclick = () => void exportCsv(spec.name, body);
  const head = el('tr', {}, el('th', {}, spec.dimension.replace('_', ' ')), ...spec.metrics.map((m) => el('th', { class: 'num' }, LABELS[m] ?? m)));
  const rows = (r.results as Json[]).map((x) => {
    const key = x.dimensions[0] as string;
    const tr = el('tr', { 'data-key': key }, el('td', {}, key || '(none)'), ...spec.metrics.map((m, i) => el('td', { class: 'num', 'data-value': String(x.metrics[i]) }, format(m, x.metrics[i]))));
    tr.onclick = () => {
      state.filters[spec.dimension] = key;
      navigate();
    };
    return tr;
  });
  const table = el('table', { 'data-table': spec.name }, el('thead', {}, head), el('tbody', {}, ...rows));
  const card = el('section', { class: 'card' }, el('h2', {}, spec.title, download), table);
  if (rows.length === 0) card.append(el('p', { class: 'empty' }, 'Nothing in this range.'));
  const ignored = Object.keys(state.filters).filter((k) => !spec.filters.includes(k));
  if (ignored.length > 0) card.append(el('p', { class: 'note' }, `Not split by ${ignored.join(', ')}.`));
  return card;
}

/** Downloads the table's own query as CSV from the API: the file holds exactly the rows shown. */
async function exportCsv(name: string, body: unknown): Promise<void> {
  const blob = await (await call('/api/v1/query', body, 'text/csv')).blob();
  const a = el('a', { href: URL.createObjectURL(blob), download: `tracklake-${name}-${state.range.replace(',', '_')}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

async function renderFunnel(): Promise<void> {
  const steps = state.steps.split(',').map((s) => s.trim()).filter(Boolean);
  ($('funnel-steps') as HTMLInputElement).value = steps.join(',');
  if (steps.length < 2) {
    $('funnel').replaceChildren(el('p', { class: 'empty' }, 'Give at least two steps.'));
    return;
  }
  const r = await post('/api/v1/funnel', { steps, date_range: dateRange(state.range), filters: filtersFor(state, ['merchant', 'product']) });
  const rows = (r.steps as Json[]).map((s) => el('tr', {}, el('td', {}, s.event), el('td', { class: 'num', 'data-value': String(s.sessions) }, format('sessions', s.sessions)), el('td', { class: 'num' }, `${(s.conversion * 100).toFixed(1)}%`)));
  const table = el('table', { 'data-table': 'funnel' }, el('thead', {}, el('tr', {}, el('th', {}, 'step'), el('th', { class: 'num' }, 'Sessions'), el('th', { class: 'num' }, 'Conversion'))), el('tbody', {}, ...rows));
  const bars = Plot.plot({ height: 30 * steps.length + 30, marginLeft: 80, x: { label: null, grid: true }, y: { label: null, domain: r.steps.map((s: Json) => s.event) }, marks: [Plot.barX(r.steps, { x: 'sessions', y: 'event', fill: '#4f46e5' }), Plot.ruleX([0])] });
  $('funnel').replaceChildren(bars, table);
}

async function renderFlow(): Promise<void> {
  ($('flow-from') as HTMLInputElement).value = state.flow;
  const r = await post('/api/v1/flow', { from: state.flow, date_range: dateRange(state.range), filters: filtersFor(state, ['merchant', 'product']), limit: 10 });
  const rows = (r.paths as Json[]).map((p) => el('tr', {}, el('td', {}, [state.flow, ...p.events].join(' → ') + (p.events.length === 0 ? ' (end)' : '')), el('td', { class: 'num', 'data-value': String(p.sessions) }, format('sessions', p.sessions))));
  $('flow').replaceChildren(el('table', { 'data-table': 'flow' }, el('thead', {}, el('tr', {}, el('th', {}, 'path'), el('th', { class: 'num' }, 'Sessions'))), el('tbody', {}, ...rows)));
}

// ---- live traffic ----------------------------------------------------------------------------------------
const LIVE_EVERY_MS = 5000;

/** The last half hour's acknowledged messages, redrawn every few seconds while the overview is in view. */
async function renderLive(): Promise<void> {
  const r = await (await call('/api/v1/live')).json();
  const data = (r.minutes as Json[]).map((m) => ({ minute: new Date(m.minute), events: m.events as number }));
  const chart = Plot.plot({
    height: 120,
    marginLeft: 40,
    width: Math.min(1150, $('live').clientWidth || 900),
    y: { grid: true, label: null, tickFormat: '~s' },
    x: { label: null, type: 'utc', tickFormat: '%H:%M' },
    marks: [Plot.rectY(data, { x1: 'minute', x2: (d: { minute: Date }) => new Date(d.minute.getTime() + 60_000), y: 'events', fill: '#4f46e5', inset: 1 }), Plot.ruleY([0]), Plot.tip(data, Plot.pointerX({ x: 'minute', y: 'events' }))],
  });
  $('live').replaceChildren(chart);
  const note = $('live-note');
  note.textContent = `${integer.format(r.total)} in 30 minutes · ${r.collectors} collector${r.collectors === 1 ? '' : 's'}`;
  note.dataset.total = String(r.total);
}

let liveTick: (() => void) | undefined;

function startLive(): void {
  $('live-card').hidden = false;
  const tick = (liveTick = () => {
    if (document.visibilityState !== 'visible' || $('overview').hidden) return;
    renderLive().catch((e: Error) => ($('live-note').textContent = `Could not load: ${e.message}`));
  });
  tick();
  setInterval(tick, LIVE_EVERY_MS);
  document.addEventListener('visibilitychange', tick);
}

// ---- events and plan health ---------------------------------------------------------------------------
const SVG = 'http://www.w3.org/2000/svg';

/** A small line of the counts: no axes, the shape is what matters. */
function sparkline(values: number[]): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 120 24');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('aria-hidden', 'true');
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? 118 / (values.length - 1) : 0;
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', values.map((v, i) => `${(1 + i * step).toFixed(1)},${(22 - (v / max) * 20).toFixed(1)}`).join(' ') || '1,22 119,22');
  svg.append(line);
  return svg;
}

const tag = (text: string, kind = '') => el('span', { class: `tag ${kind}`.trim() }, text);

async function renderEvents(): Promise<void> {
  const r = await post('/api/v1/events', { date_range: dateRange(state.range) });
  const events = r.events as Json[];
  const head = el('tr', {}, ...['Event', 'Count', `Trend (${r.sparkline.days_per_point > 1 ? `${Math.round(r.sparkline.days_per_point)} days` : 'a day'} a point)`, 'First seen', 'Last seen', 'Plan', 'Conventions', 'Violations', 'Sample', 'Quarantined'].map((h, i) => el('th', i === 1 || i === 9 ? { class: 'num' } : {}, h)));
  const rows = events.map((e) => {
    const plan = e.planned === null ? tag('no plan') : e.planned ? tag('planned', 'good') : tag('not in plan', 'bad');
    const conventions = el('td', { 'data-cell': 'conventions' }, ...(e.conventions as Json[]).map((c) => el('span', { class: 'tag bad', title: c.detail }, c.kind)));
    const violations = el('td', { 'data-cell': 'violations' }, ...(e.violations as Json[]).map((v) => el('span', { class: `tag${v.action === 'block' ? ' bad' : ''}`, 'data-violation': `${v.type}|${v.action}`, 'data-value': String(v.count) }, `${v.type} ×${integer.format(v.count)} (${v.action})`)));
    const sample = el('td', { class: 'detail' }, e.sample ? `${e.sample.field ? `${e.sample.field}: ` : ''}${e.sample.message} (${e.sample.message_id})` : '');
    const quarantine = el('td', { class: 'num', 'data-cell': 'quarantined', 'data-value': String(e.quarantined) }, e.quarantined > 0 ? integer.format(e.quarantined) : '');
    if (e.replay) quarantine.append(el('br'), el('code', { title: 'lets in the quarantined messages the current plan passes' }, e.replay));
    return el('tr', { 'data-event': e.event },
      el('td', {}, e.event), el('td', { class: 'num', 'data-cell': 'count', 'data-value': String(e.count) }, integer.format(e.count)), el('td', {}, sparkline(e.daily)),
      el('td', { class: 'day' }, e.first_seen ?? ''), el('td', { class: 'day' }, e.last_seen ?? ''), el('td', {}, plan), conventions, violations, sample, quarantine);
  });
  const table = el('table', { 'data-table': 'events' }, el('thead', {}, head), el('tbody', {}, ...rows));
  $('events').replaceChildren(table);
  if (rows.length === 0) $('events').append(el('p', { class: 'empty' }, 'No events in this range.'));
  const violated = events.filter((e) => e.violations.length > 0).length;
  $('events-summary').textContent = `${events.length} event names, ${violated} with violations${r.plan ? '' : ' (no tracking plan for this tenant: the conventions only)'}`;
  $('foot').textContent = 'Counts are of messages the collectors received (observed schemas, written every flush); violations and quarantine are by the event’s own day.';
}

async function render(): Promise<void> {
  state = readState();
  const select = $('range-select') as HTMLSelectElement;
  const custom = /^(\d{4}-\d{2}-\d{2}),(\d{4}-\d{2}-\d{2})$/.exec(state.range);
  select.value = custom ? 'custom' : state.range;
  $('custom').hidden = !custom;
  if (custom) {
    ($('range-from') as HTMLInputElement).value = custom[1]!;
    ($('range-to') as HTMLInputElement).value = custom[2]!;
  }
  const events = state.view === 'events' && meta.merchant === null;
  for (const b of document.querySelectorAll<HTMLButtonElement>('#views button')) {
    if (b.dataset.view === (events ? 'events' : 'overview')) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  $('overview').hidden = events;
  $('events-view').hidden = !events;
  if (!events) liveTick?.();
  renderFilters();
  document.body.dataset.loading = 'true';
  try {
    if (events) {
      await renderEvents();
      return;
    }
    const tables = await Promise.all(tableSpecs().map(renderTable));
    $('tables').replaceChildren(...tables);
    await Promise.all([renderStats(), renderChart(), renderFunnel(), renderFlow()]);
    $('foot').textContent = `Nightly jobs computed through ${meta.computed_through.aggregates ?? 'no day yet'} (aggregates) and ${meta.computed_through.sessions ?? 'no day yet'} (sessions); later days come from the tracking files.`;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return signOut(e.message);
    $('foot').textContent = `Could not load: ${(e as Error).message}`;
  } finally {
    delete document.body.dataset.loading;
    document.body.dataset.ready = 'true';
  }
}

function navigate(): void {
  writeState(state);
  void render();
}

function signOut(message = ''): void {
  sessionStorage.removeItem(TOKEN_KEY);
  $('dashboard').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  document.body.dataset.ready = 'true';
}

async function start(): Promise<void> {
  if (!takeToken()) return signOut();
  try {
    meta = (await (await call('/api/v1/meta')).json()) as Meta;
  } catch (e) {
    return signOut((e as Error).message);
  }
  $('signin').hidden = true;
  $('dashboard').hidden = false;
  $('scope').textContent = meta.merchant ? `${meta.tenant} · merchant ${meta.merchant}` : meta.tenant;
  $('event-names').replaceChildren(...meta.events.map((e) => el('option', { value: e })));
  // Events and plan health span every merchant: a merchant token's page has the overview only.
  $('views').hidden = meta.merchant !== null;
  if (meta.merchant === null) startLive();
  await render();
}

$('signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, ($('signin-token') as HTMLTextAreaElement).value.trim());
  void start();
});
$('range-select').addEventListener('change', () => {
  const v = ($('range-select') as HTMLSelectElement).value;
  if (v === 'custom') {
    $('custom').hidden = false;
    return;
  }
  state.range = v;
  navigate();
});
$('range').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const from = ($('range-from') as HTMLInputElement).value;
  const to = ($('range-to') as HTMLInputElement).value;
  if (from && to && from <= to) {
    state.range = `${from},${to}`;
    navigate();
  }
});
$('funnel-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  state.steps = ($('funnel-steps') as HTMLInputElement).value;
  navigate();
});
$('flow-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  state.flow = ($('flow-from') as HTMLInputElement).value.trim() || 'view';
  navigate();
});
for (const b of document.querySelectorAll<HTMLButtonElement>('#views button')) {
  b.addEventListener('click', () => {
    state.view = b.dataset.view === 'events' ? 'events' : 'overview';
    navigate();
  });
}
window.addEventListener('popstate', () => void render());
void start();
