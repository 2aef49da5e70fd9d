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
  | 'DELTAC_W_IR_VERSION'
  /** a self-attention module of a quantized model is kept: its quantization cannot be read (scales not constant) */
  | 'DELTAC_W_QUANTIZED';

export type Severity = 'error' | 'warning' | 'note';

interface DiagnosticText {
  message: string;
  /** Node or value the diagnostic is about, when there is one. */
  where?: string;
}

/** An error always carries an ErrorCode, so it can be thrown as a DeltacError as it is. */
export type Diagnostic =
  | (DiagnosticText & { severity: 'error'; code: ErrorCode })
  | (DiagnosticText & { severity: 'warning' | 'note'; code: ErrorCode | WarningCode | 'DELTAC_N_INFO' });

export function error(code: ErrorCode, message: string, where?: string): Diagnostic {
  return { severity: 'error', code, message, where };
}

export function warning(code: Diagnostic['code'], message: string, where?: string): Diagnostic {
  return { severity: 'warning', code, message, where };
}
