/** Diagnostics reported by the verifier and by passes (never printed by them). */
import type { ErrorCode } from './errors.js';

export type Severity = 'error' | 'warning' | 'note';

export interface Diagnostic {
  severity: Severity;
  code: ErrorCode | 'DELTAC_W_PARTIAL' | 'DELTAC_W_EXTERNAL_MISSING' | 'DELTAC_W_SHAPE' | 'DELTAC_N_INFO';
  message: string;
  /** Node or value the diagnostic is about, when there is one. */
  where?: string;
}

export function error(code: Diagnostic['code'], message: string, where?: string): Diagnostic {
  return { severity: 'error', code, message, where };
}

export function warning(code: Diagnostic['code'], message: string, where?: string): Diagnostic {
  return { severity: 'warning', code, message, where };
}
