import type { ApprovalEventInput, Json } from '../audit/types.js';
import type { Principal } from '../principal.js';
import type { ChangeEvent, ChangeRequest } from './model.js';

/** The actor of events nobody in particular caused (expiry, a waiting client going away). */
export const SYSTEM_ACTOR: Principal = { name: 'pgairlock', roles: [] };

/**
 * One change-request event as an audit approval record, for
 * `onEvent: (req, ev) => audit.recordApprovalEvent(approvalAuditEvent(req, ev))`.
 * `created` is recorded as `requested`; reasons and the requester go in `detail`.
 */
export function approvalAuditEvent(req: ChangeRequest, ev: ChangeEvent): ApprovalEventInput {
  const actor: Principal = 'by' in ev && ev.by ? ev.by : SYSTEM_ACTOR;
  const detail: Record<string, Json> = {
    status: req.status,
    requester: req.requester.name,
    requirements: req.requirements.map((r) => ({ rule: r.rule ?? null, count: r.count, roles: [...r.roles] })),
    expires_at: req.expiresAt,
  };
  if (ev.type === 'rejected' || ev.type === 'cancelled' || ev.type === 'expired') detail.reason = ev.reason;
  // Bound values are part of what is approved: their hash on every event, the values (as shown) once.
  if (req.paramsHash) detail.params_sha256 = req.paramsHash;
  if (ev.type === 'created' && req.params) detail.params = JSON.parse(JSON.stringify(req.params)) as Json;
  return {
    event: ev.type === 'created' ? 'requested' : ev.type,
    changeId: req.id,
    actor,
    comment: ev.type === 'approved' ? (ev.comment ?? null) : null,
    decisionId: req.decisionId ?? null,
    fingerprint: req.fingerprint,
    sqlHash: req.textHash,
    database: req.database,
    detail,
  };
}
