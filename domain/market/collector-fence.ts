import type { CollectorFence, CollectorFenceRequest } from "../../contracts/collector-fence";
import type { CollectorsView } from "../../contracts/market";
import { DomainError } from "../errors";
import { revoke } from "../identity/revocation";

/**
 * Fences a collector host: every token of its collector identity is refused until `fencedUntil`
 * (a `user` row on the revocation denylist, which MarketFeed objects already check on their publish
 * sockets). Each of its sockets is closed at its next frame (4401), the standby of every symbol it
 * led is promoted at once (the "primary disconnected" failover, no silence to wait for), and its
 * reconnects and health reports answer 401 until the row expires; then it rejoins as a standby.
 * The denylist is reused rather than a fence list of its own so the check stays where it is, one
 * in-memory lookup per second per socket, with no new state in the feed objects.
 *
 * Refused (409) when a symbol it leads has no standby, unless `force`: that would leave the symbol
 * with no publisher at all, which no operator means by "fail over".
 */
export async function fenceCollector(
  env: Pick<Env, "DB">,
  view: CollectorsView | null,
  host: string,
  request: CollectorFenceRequest,
  now = Date.now(),
): Promise<CollectorFence> {
  const known = view?.hosts.find((h) => h.host === host);
  if (!view || !known) throw new DomainError("not-found", `No collector host "${host}" has reported`);
  const withoutStandby = known.primaryFor.filter((symbol) => (view.symbols[symbol]?.standbys.length ?? 0) === 0);
  if (withoutStandby.length > 0 && !request.force) {
    throw new DomainError(
      "conflict",
      `${host} is the only publisher of ${withoutStandby.join(", ")}: fencing it stops those books (send force: true to fence anyway)`,
      { kind: "no-standby" },
    );
  }
  const fencedUntil = now + request.seconds * 1000;
  await revoke(env, [{ kind: "user", subject: host, expiresAt: fencedUntil }]);
  return {
    host,
    fencedUntil: new Date(fencedUntil).toISOString(),
    primaryFor: known.primaryFor,
    standbyFor: known.standbyFor,
    withoutStandby,
  };
}
