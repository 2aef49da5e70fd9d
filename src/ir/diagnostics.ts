/** Diagnostics reported by the verifier and by passes (never printed by them). */
import type { ErrorCode } from './errors.js';

/** Codes of warnings: the model is usable, something the user may want to know was found. */
export type WarningCode =
  | 'DELTAC_W_PARTIAL'
  | 'DELTAC_W_EXTERNAL_MISSING'
  | 'DELTAC_W_SHAPE'
  /** a declared type or shape disagrees with what shape inference computes (the declared one is kept) */
  | 'DELTAC_W_TYPE_CONFLICT'
  /** the model declares an IR version newer than the schema deltac knows */
  | 'DELTAC_W_IR_VERSION';

export type Severity = 'error' | 'warning' | 'note';

export interface Diagnostic {
  severity: Severity;
  code: ErrorCode | WarningCode | 'DELTAC_N_INFO';
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
