/**
 * Connections out of tracklake (destinations, S3) through the standard proxy variables, as curl and most
 * tools read them: `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` (or lower case) name the proxy for a scheme,
 * and `NO_PROXY` lists the hosts (`.example.com`, `*.internal`, `host:port`, `*`) reached directly
 * (proxy-from-env). Many companies let servers out only through such a proxy; Node's own http and https
 * ignore the variables. An https URL goes through the proxy as a CONNECT tunnel (its TLS stays end to end),
 * an http one as a request with the full URL.
 */
import http from 'node:http';
import https from 'node:https';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import { ConfigError } from './errors.js';

/**
 * The proxy a request to `url` goes through under the process's environment, or undefined: directly. A
 * proxy that is not an HTTP(S) one (ALL_PROXY=socks5://…, set for other tools) is refused by name: every
 * request through it would fail.
 */
export function proxyFor(url: string): string | undefined {
  const proxy = getProxyForUrl(url) || undefined;
  if (proxy !== undefined && !/^https?:\/\/[^/]/i.test(proxy)) {
    throw new ConfigError('HTTPS_PROXY / HTTP_PROXY / ALL_PROXY', `the proxy for ${new URL(url).host} is ${JSON.stringify(proxy.replace(/\/\/[^@/]*@/, '//'))}: tracklake goes out through http:// or https:// proxies only (set NO_PROXY to reach it directly)`);
  }
  return proxy;
}

/** An agent through the proxy the environment names for `url`; undefined when it is reached directly. */
export function proxyAgentFor(url: string, options: http.AgentOptions = {}): http.Agent | undefined {
  const proxy = proxyFor(url);
  if (proxy === undefined) return undefined;
  return new URL(url).protocol === 'https:' ? new HttpsProxyAgent(proxy, options) : new HttpProxyAgent(proxy, options);
}

/** An agent for requests to `url` (one origin): through the environment's proxy for it, else a plain one. */
export function agentFor(url: string, options: http.AgentOptions = {}): http.Agent {
  return proxyAgentFor(url, options) ?? (new URL(url).protocol === 'https:' ? new https.Agent(options) : new http.Agent(options));
}

/** How a URL is reached, for the logs: "directly" or the proxy's origin (never its credentials). */
export function routeOf(url: string): string {
  const proxy = proxyFor(url);
  if (proxy === undefined) return 'directly';
  const p = new URL(proxy);
  return `through ${p.protocol}//${p.host}`;
}
