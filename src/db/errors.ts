/** Errors that mean the database (or the policy) cannot be read: 503, fail closed. */
export function isUnavailableError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string } | undefined;
  const name = e?.name ?? '';
  const code = String(e?.code ?? '');
  return (
    name === 'LibsqlError' ||
    name === 'SqliteError' ||
    name === 'PolicyError' ||
    /^SQLITE_/.test(code) ||
    code === 'CLIENT_CLOSED' ||
    /database connection is not open/i.test(String(e?.message ?? ''))
  );
}

/** The database's last-owner guard (a trigger) refused the change. */
export function isLastOwnerError(err: unknown): boolean {
  return String((err as Error)?.message ?? '').includes('last_owner');
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; extendedCode?: string; message?: string };
  return (
    e?.extendedCode === 'SQLITE_CONSTRAINT_UNIQUE' ||
    e?.extendedCode === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    /UNIQUE constraint failed/.test(String(e?.message ?? ''))
  );
}
