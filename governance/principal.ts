/** Who is acting: resolved once per wire session (user, database, application_name) or per MCP token. */
export interface Principal {
  /** Stable name used in policy, audit and approvals, e.g. "agent:billing-bot" or "alice". */
  readonly name: string;
  /** Roles the policy decides on, e.g. ["agent"], ["dba", "release-manager"]. */
  readonly roles: readonly string[];
}

/** What the wire or MCP layer knows about a connection when it asks who this is. */
export interface ConnectionIdentity {
  readonly user: string;
  readonly database: string;
  readonly applicationName?: string;
  readonly clientAddress?: string;
}
