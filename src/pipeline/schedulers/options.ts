/**
 * Reading a scheduler's options from a parsed `scheduler_config.json`, as diffusers'
 * `from_config` does: every option the scheduler class has is taken from the config (a
 * missing or null one keeps the class's default), keys the class does not have are ignored.
 * Unlike diffusers, a value deltac does not implement is refused, never ignored.
 */
import { DeltacError } from '../../ir/errors.js';

export type SchedulerConfig = Readonly<Record<string, unknown>>;

export interface OptionSpec<T> {
  readonly default: T;
  read(value: unknown, say: (why: string) => DeltacError): T;
}

type Values<S> = { -readonly [K in keyof S]: S[K] extends OptionSpec<infer T> ? T : never };

/** The options of `spec` read from `config`; throws DELTAC_E_UNSUPPORTED_SCHEDULER naming the key. */
export function readOptions<S extends Record<string, OptionSpec<unknown>>>(scheduler: string, config: SchedulerConfig, spec: S): Values<S> {
  const out: Record<string, unknown> = {};
  for (const [key, option] of Object.entries(spec)) {
    const value = config[key];
    const say = (why: string) =>
      new DeltacError('DELTAC_E_UNSUPPORTED_SCHEDULER', `${scheduler} option ${key}=${JSON.stringify(value)}: ${why}`, { scheduler, option: key });
    out[key] = value === undefined || value === null ? option.default : option.read(value, say);
  }
  return out as Values<S>;
}

export const option = {
  number(def: number, check?: (x: number) => string | undefined): OptionSpec<number> {
    return {
      default: def,
      read(v, say) {
        if (typeof v !== 'number' || !Number.isFinite(v)) throw say('expected a finite number');
        const why = check?.(v);
        if (why) throw say(why);
        return v;
      },
    };
  },
  integer(def: number, min: number): OptionSpec<number> {
    return option.number(def, (x) => (Number.isInteger(x) && x >= min ? undefined : `expected an integer ≥ ${min}`));
  },
  /** A number, or null for "not set" (diffusers' None). */
  optionalNumber(check?: (x: number) => string | undefined): OptionSpec<number | null> {
    const n = option.number(0, check);
    return { default: null, read: (v, say) => n.read(v, say) };
  },
  boolean(def: boolean): OptionSpec<boolean> {
    return {
      default: def,
      read(v, say) {
        if (typeof v !== 'boolean') throw say('expected true or false');
        return v;
      },
    };
  },
  /**
   * One of `values`; `refused` maps values diffusers knows but deltac does not implement to
   * the reason (said to the user).
   */
  oneOf<T extends string>(def: T, values: readonly T[], refused: Record<string, string> = {}): OptionSpec<T> {
    return {
      default: def,
      read(v, say) {
        if (typeof v === 'string' && refused[v]) throw say(`not supported by deltac: ${refused[v]}`);
        if (typeof v !== 'string' || !values.includes(v as T)) throw say(`expected one of ${values.map((x) => JSON.stringify(x)).join(', ')}`);
        return v as T;
      },
    };
  },
  /** A flag deltac implements only at its default value. */
  refusedUnless<T>(def: T, reason: string): OptionSpec<T> {
    return {
      default: def,
      read(v, say) {
        if (v !== def) throw say(`not supported by deltac (${reason}); only ${JSON.stringify(def)} is`);
        return v as T;
      },
    };
  },
  /** `trained_betas`: a list of num_train_timesteps betas in (0, 1). */
  betaList(): OptionSpec<number[] | null> {
    return {
      default: null,
      read(v, say) {
        if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && x > 0 && x < 1)) {
          throw say('expected a list of betas, each in (0, 1)');
        }
        return v as number[];
      },
    };
  },
};
