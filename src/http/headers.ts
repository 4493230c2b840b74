/** Header names are compared after lower-casing and mapping `_` and `.` to `-` (CONTRACT §4). */
export function normalizeHeaderName(name: string): string {
  return name.toLowerCase().replace(/[_.]/g, '-');
}
