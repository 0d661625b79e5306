/** Supplies the `service`-role bearer token for the edge, exchanging the shared secret when needed. */
export class ServiceToken {
  private readonly edgeUrl: string;
  private readonly secret: string | undefined;
  private readonly fixed: string | undefined;
  private readonly collectorId: string | undefined;
  private token: string | undefined;
  private expiresAt = 0;
  private inflight: Promise<string> | undefined;

  /** `collectorId` becomes the token's subject: the edge keeps one publish socket per collector identity. */
  constructor(opts: { edgeUrl: string; secret?: string; token?: string; collectorId?: string }) {
    this.edgeUrl = opts.edgeUrl.replace(/\/$/, "");
    this.secret = opts.secret;
    this.fixed = opts.token;
    // Ids the edge would refuse (it takes [A-Za-z0-9._-]{1,64}) fall back to its default identity.
    this.collectorId =
      opts.collectorId && /^[A-Za-z0-9._-]{1,64}$/.test(opts.collectorId) ? opts.collectorId : undefined;
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

  /** Forget the cached token (the edge answered 401, or closed the socket for an expired or revoked token). */
  invalidate(): void {
    this.token = undefined;
  }

  private async fetchToken(): Promise<string> {
    if (!this.secret) throw new Error("no service token or SERVICE_TOKEN_SECRET configured");
    const res = await fetch(`${this.edgeUrl}/v1/auth/service-token`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ secret: this.secret, ...(this.collectorId ? { collectorId: this.collectorId } : {}) }),
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
