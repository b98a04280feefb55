/**
 * Realistic marketplace traffic as Segment messages, for newcomers (`tracklake simulate`) and benchmarks.
 * Deterministic for a seed: many devices (desktop, phone, app, a share of bots), some logging in partway
 * through a session (so device ids link to account ids, some accounts on two devices), across referrers and
 * campaigns. Sessions are as shops see them: about four in ten bounce (one page, then gone; more on phones
 * and from social links, fewer from newsletters and in the app), some look at pages only, the rest view
 * products with impressions, share, chat and order.
 */
export interface SimOptions {
  events: number;
  days: number;
  /** End of the simulated period (epoch ms); events spread over the `days` before it. */
  endMs: number;
  seed?: number;
  tenantHint?: string;
  /**
   * Share (0-1) of track calls made to break seed 002's conventions, so tracking plans have something to
   * find: Title Case names, `channel_id`, `<event> by <who>` names, a price sent as a string, an event no
   * plan has. The rest of the traffic is unchanged (its own random stream).
   */
  planViolations?: number;
}

type Msg = Record<string, unknown>;

/** mulberry32: tiny, fast, deterministic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const UAS = {
  desktop: [
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
    'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  ],
  mobile: [
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
    'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  ],
  bot: [
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
    'Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)',
  ],
};
const REFERRERS = ['', '', '', 'https://www.google.com/', 'https://www.bing.com/search?q=shoes', 'https://l.facebook.com/', 'https://www.instagram.com/', 'https://wa.me/', 'https://mail.google.com/', 'https://duckduckgo.com/'];
const CAMPAIGNS = [undefined, undefined, undefined, { source: 'newsletter', medium: 'email', name: 'weekly' }, { source: 'facebook', medium: 'social', name: 'spring' }, { source: 'whatsapp', medium: 'social', name: 'share' }];
const PAGES = ['/', '/search', '/category/shoes', '/category/bags', '/deals'];

interface Device {
  id: string;
  kind: 'desktop' | 'mobile' | 'app' | 'bot';
  ua: string;
  userId?: string;
  loginAfter: number;
  ip: string;
}

export function* simulateTraffic(o: SimOptions): Generator<Msg> {
  const rnd = prng(o.seed ?? 42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const nDevices = Math.max(5, Math.ceil(o.events / 25));
  const nProducts = Math.max(20, Math.ceil(o.events / 50));
  const nMerchants = Math.max(3, Math.ceil(nProducts / 40));
  const products = Array.from({ length: nProducts }, (_, i) => ({ id: `p${i + 1}`, merchant: `m${(i % nMerchants) + 1}`, price: Math.round((5 + rnd() * 195) * 100) / 100 }));
  const devices: Device[] = [];
  for (let i = 0; i < nDevices; i++) {
    const r = rnd();
    const kind = r < 0.05 ? 'bot' : r < 0.45 ? 'desktop' : r < 0.8 ? 'mobile' : 'app';
    const logsIn = kind !== 'bot' && rnd() < 0.4;
    // About one account in five uses a second device.
    const shared = logsIn && devices.length > 0 && rnd() < 0.2 ? devices.find((d) => d.userId)?.userId : undefined;
    devices.push({
      id: `d-${i + 1}-${Math.floor(rnd() * 1e9).toString(36)}`,
      kind,
      ua: kind === 'app' ? 'Shop/3.2.0 (iPhone; iOS 17.4; Scale/3.00)' : pick(UAS[kind]),
      userId: logsIn ? (shared ?? `u${i + 1}`) : undefined,
      loginAfter: Math.floor(rnd() * 6),
      ip: `198.51.100.${1 + Math.floor(rnd() * 250)}`,
    });
  }
  const vr = prng((o.seed ?? 42) ^ 0x5eed);
  const breaking = () => (o.planViolations ?? 0) > 0 && vr() < o.planViolations!;
  const start = o.endMs - o.days * 86_400_000;
  let emitted = 0;
  let msgSeq = 0;
  const perDevice = new Map<string, number>();
  const signedIn = new Set<string>();
  while (emitted < o.events) {
    const d = pick(devices);
    let t = start + Math.floor(rnd() * (o.endMs - start - 3_600_000));
    const referrer = pick(REFERRERS);
    const campaign = pick(CAMPAIGNS);
    const seen = perDevice.get(d.id) ?? 0;
    // A device logs in partway through its first session past loginAfter that is more than a bounce; from
    // then on it sends its userId.
    const loggedIn = signedIn.has(d.id);
    const base = (): Msg => {
      t += Math.floor(5_000 + rnd() * 120_000);
      const context: Msg = { ip: d.ip, userAgent: d.ua, page: { referrer, url: `https://shop.example${pick(PAGES)}`, path: pick(PAGES) } };
      if (campaign) context.campaign = campaign;
      if (d.kind === 'app') {
        context.app = { name: 'Shop', version: '3.2.0' };
        context.device = { id: d.id, type: 'ios' };
        context.library = { name: 'analytics-ios', version: '4.1.0' };
      }
      msgSeq++;
      return { messageId: `sim-${o.seed ?? 42}-${msgSeq}`, anonymousId: d.id, ...(loggedIn ? { userId: d.userId } : {}), timestamp: new Date(t).toISOString(), context };
    };
    const pageView = (): Msg => ({ ...base(), type: d.kind === 'app' ? 'screen' : 'page', name: pick(['Home', 'Search', 'Category']) });
    const session: Msg[] = [pageView()];
    const r = rnd();
    const bounce = bounceShare(d.kind, referrer, campaign);
    if (r < bounce) {
      // A bounce: one page, then gone.
    } else if (r < bounce + (1 - bounce) * BROWSE_ONLY) {
      // A look around that never reaches a product.
      for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) session.push(pageView());
    } else {
      const nViews = 1 + Math.floor(rnd() * 5);
      const cart: Array<(typeof products)[number]> = [];
      for (let v = 0; v < nViews; v++) {
        const p = pick(products);
        session.push({ ...base(), type: 'track', event: 'product viewed', properties: { product_id: p.id, merchant_id: p.merchant, price: p.price, impressions: [pick(products).id, pick(products).id, pick(products).id] } });
        const x = rnd();
        if (x < 0.1) session.push({ ...base(), type: 'track', event: 'product shared', properties: { product_id: p.id, merchant_id: p.merchant } });
        else if (x < 0.18) session.push({ ...base(), type: 'track', event: 'chat started', properties: { product_id: p.id, merchant_id: p.merchant } });
        if (rnd() < 0.3) cart.push(p);
      }
      if (cart.length > 0 && rnd() < 0.35 && d.kind !== 'bot') {
        const items = cart.map((p) => ({ product_id: p.id, merchant_id: p.merchant, price: p.price, quantity: 1 + Math.floor(rnd() * 2) }));
        const revenue = Math.round(items.reduce((s, i) => s + i.price * i.quantity, 0) * 100) / 100;
        session.push({ ...base(), type: 'track', event: 'order completed', properties: { order_id: `o${msgSeq}`, revenue, products: items } });
      }
    }
    if (d.userId !== undefined && !loggedIn && seen >= d.loginAfter && session.length > 1) {
      // The login: an identify after the first page, and the rest of the session under the account.
      const at = 1 + Math.floor(rnd() * (session.length - 1));
      signedIn.add(d.id);
      const identify: Msg = { ...base(), userId: d.userId, type: 'identify', traits: { plan: 'free' }, timestamp: session[at - 1]!.timestamp };
      for (const m of session.slice(at)) m.userId = d.userId;
      session.splice(at, 0, identify);
    }
    perDevice.set(d.id, seen + 1);
    for (const m of session) {
      if (emitted >= o.events) return;
      emitted++;
      yield m.type === 'track' && breaking() ? breakConvention(m, vr) : m;
    }
  }
}

/**
 * The share of sessions that bounce (one page, then gone), as shops see it: phones more than desktops, the
 * app least; social links and searches more than newsletters and people who come back on their own.
 */
export function bounceShare(kind: Device['kind'], referrer: string, campaign: (typeof CAMPAIGNS)[number]): number {
  if (kind === 'bot') return 0.9;
  let p = kind === 'mobile' ? 0.5 : kind === 'app' ? 0.28 : 0.38;
  const via = campaign?.medium ?? (/facebook|instagram|wa\.me/.test(referrer) ? 'social' : /google|bing|duckduckgo/.test(referrer) ? 'search' : referrer ? 'referral' : 'direct');
  p += via === 'social' ? 0.12 : via === 'search' ? 0.05 : via === 'email' ? -0.1 : via === 'direct' ? -0.05 : 0;
  return p;
}
/** Of the sessions that do not bounce, the share that look at pages only and never at a product. */
const BROWSE_ONLY = 0.15;

const titleCase = (s: string) => s.replace(/\b[a-z]/g, (c) => c.toUpperCase());

/** A track call made to break one of seed 002's conventions (see SimOptions.planViolations). */
function breakConvention(m: Msg, rnd: () => number): Msg {
  const properties = { ...(m.properties as Msg) };
  const event = m.event as string;
  switch (Math.floor(rnd() * 5)) {
    case 0:
      return { ...m, event: titleCase(event) };
    case 1:
      return { ...m, properties: { ...properties, channel_id: `ch-${Math.floor(rnd() * 1000)}` } };
    case 2:
      return { ...m, event: `${event} by guest` };
    case 3:
      return { ...m, properties: { ...properties, price: String(properties.price ?? properties.revenue ?? 1) } };
    default:
      return { ...m, event: 'Add To Cart' };
  }
}
