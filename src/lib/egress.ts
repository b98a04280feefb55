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

/** The proxy a request to `url` goes through under the process's environment, or undefined: directly. */
export function proxyFor(url: string): string | undefined {
  return getProxyForUrl(url) || undefined;
}

/** An agent for requests to `url` (one origin), through the proxy the environment names for it, if any. */
export function agentFor(url: string, options: http.AgentOptions = {}): http.Agent {
  const tls = new URL(url).protocol === 'https:';
  const proxy = proxyFor(url);
  if (proxy === undefined) return tls ? new https.Agent(options) : new http.Agent(options);
  return tls ? new HttpsProxyAgent(proxy, options) : new HttpProxyAgent(proxy, options);
}

/** How a URL is reached, for the logs: "directly" or the proxy's origin (never its credentials). */
export function routeOf(url: string): string {
  const proxy = proxyFor(url);
  if (proxy === undefined) return 'directly';
  const p = new URL(proxy);
  return `through ${p.protocol}//${p.host}`;
}
