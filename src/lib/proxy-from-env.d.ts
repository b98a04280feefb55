// proxy-from-env ships no types: its one function, as its README documents it.
declare module 'proxy-from-env' {
  /** The proxy URL a request to `url` goes through under HTTP(S)_PROXY / ALL_PROXY and NO_PROXY; '' for none. */
  export function getProxyForUrl(url: string): string;
}
