/** Supplies the `service`-role bearer token for the edge, exchanging the shared secret when needed. */
export class ServiceToken {
  private readonly edgeUrl: string;
  private readonly secret: string | undefined;
  private readonly fixed: string | undefined;
  private token: string | undefined;
  private expiresAt = 0;
  private inflight: Promise<string> | undefined;

  constructor(opts: { edgeUrl: string; secret?: string; token?: string }) {
    this.edgeUrl = opts.edgeUrl.replace(/\/$/, "");
    this.secret = opts.secret;
    this.fixed = opts.token;
  }

  /** A token valid for at least another minute. */
  async get(): Promise<string> {
    if (this.fixed) return this.fixed;
    if (this.token && Date.now() < this.expiresAt) return this.token;
    this.inflight ??= this.fetchToken().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Forget the cached token (the edge answered 401). */
  invalidate(): void {
    this.token = undefined;
  }

  private async fetchToken(): Promise<string> {
    if (!this.secret) throw new Error("no service token or SERVICE_TOKEN_SECRET configured");
    const res = await fetch(`${this.edgeUrl}/v1/auth/service-token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ secret: this.secret }),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`service token: HTTP ${res.status}`);
    const body = (await res.json()) as { accessToken?: unknown; expiresIn?: unknown };
    if (typeof body.accessToken !== "string") throw new Error("service token: no accessToken in response");
    const ttl = typeof body.expiresIn === "number" ? body.expiresIn : 900;
    this.token = body.accessToken;
    this.expiresAt = Date.now() + Math.max(10, ttl - 60) * 1000;
    return this.token;
  }
}
