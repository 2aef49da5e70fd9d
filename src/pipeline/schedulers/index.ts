/**
 * The schedulers deltac reproduces, and the factory that builds one from a pipeline's
 * `scheduler/scheduler_config.json` (its `_class_name`) or from a name given by the user
 * (`--scheduler`), which then takes the options it knows from that config, as diffusers'
 * `OtherScheduler.from_config(pipe.scheduler.config)` does.
 *
 * Node-free: reading the file is the caller's (see `parseSchedulerConfig` for its text).
 */
import { DeltacError } from '../../ir/errors.js';
import { DdimScheduler } from './ddim.js';
import { DpmSolverMultistepScheduler } from './dpm-solver-multistep.js';
import { EulerDiscreteScheduler } from './euler-discrete.js';
import type { SchedulerConfig } from './options.js';
import { PndmScheduler } from './pndm.js';
import type { Scheduler } from './scheduler.js';

export type { Scheduler } from './scheduler.js';
export type { SchedulerConfig } from './options.js';

interface Entry {
  /** Short names accepted besides the class name (any case). */
  aliases: readonly string[];
  create(config: SchedulerConfig): Scheduler;
}

const SCHEDULERS: Record<string, Entry> = {
  PNDMScheduler: { aliases: ['pndm', 'plms'], create: (c) => new PndmScheduler(c) },
  DDIMScheduler: { aliases: ['ddim'], create: (c) => new DdimScheduler(c) },
  EulerDiscreteScheduler: { aliases: ['euler', 'euler-discrete'], create: (c) => new EulerDiscreteScheduler(c) },
  DPMSolverMultistepScheduler: {
    aliases: ['dpm', 'dpm++', 'dpmsolver++', 'dpm-solver', 'dpmsolver-multistep'],
    create: (c) => new DpmSolverMultistepScheduler(c),
  },
};

/** The diffusers scheduler classes deltac implements. */
export const SUPPORTED_SCHEDULERS: readonly string[] = Object.keys(SCHEDULERS);

function supportedList(): string {
  return Object.entries(SCHEDULERS)
    .map(([name, e]) => `${name} (${e.aliases.join(', ')})`)
    .join(', ');
}

/** The class name for a class name or short name, any case; DELTAC_E_UNSUPPORTED_SCHEDULER naming the supported ones otherwise. */
export function schedulerClassName(name: string): string {
  const wanted = name.trim().toLowerCase();
  for (const [className, entry] of Object.entries(SCHEDULERS)) {
    if (className.toLowerCase() === wanted || entry.aliases.includes(wanted)) return className;
  }
  throw new DeltacError('DELTAC_E_UNSUPPORTED_SCHEDULER', `scheduler ${JSON.stringify(name)} is not supported; deltac has ${supportedList()}`, {
    scheduler: name,
    supported: SUPPORTED_SCHEDULERS,
  });
}

/**
 * A scheduler for `config` (a parsed scheduler_config.json; `{}` for all defaults): the
 * class `name` when given, else the config's `_class_name`. Options deltac does not
 * implement are refused with DELTAC_E_UNSUPPORTED_SCHEDULER; call `setTimesteps` next.
 */
export function createScheduler(config: SchedulerConfig, name?: string): Scheduler {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new DeltacError('DELTAC_E_UNSUPPORTED_SCHEDULER', 'the scheduler config is not a JSON object');
  }
  const configured = config['_class_name'];
  if (name === undefined && typeof configured !== 'string') {
    throw new DeltacError(
      'DELTAC_E_UNSUPPORTED_SCHEDULER',
      `the scheduler config names no _class_name; choose one of ${SUPPORTED_SCHEDULERS.join(', ')} (--scheduler)`,
    );
  }
  const className = schedulerClassName(name ?? (configured as string));
  // keys diffusers recorded as defaults of the class that wrote them take the new class's defaults
  const defaults = config['_use_default_values'];
  const options = Array.isArray(defaults) ? Object.fromEntries(Object.entries(config).filter(([k]) => !defaults.includes(k))) : config;
  return SCHEDULERS[className]!.create(options);
}

/**
 * Parses the text of a scheduler_config.json. Python's json module (which diffusers saves
 * with) writes NaN, Infinity and -Infinity (e.g. DPM-Solver's lambda_min_clipped), which
 * JSON.parse rejects; they are read as the numbers they are.
 */
export function parseSchedulerConfig(text: string, label = 'scheduler_config.json'): SchedulerConfig {
  const special: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };
  const marker = '\u0000deltac-number:';
  const quoted = text.replace(/"(?:[^"\\]|\\.)*"|-?Infinity|NaN/g, (m) => (m.startsWith('"') ? m : JSON.stringify(marker + m)));
  let parsed: unknown;
  try {
    parsed = JSON.parse(quoted, (_key, value) =>
      typeof value === 'string' && value.startsWith(marker) ? special[value.slice(marker.length)] : value,
    );
  } catch (e) {
    throw new DeltacError('DELTAC_E_UNSUPPORTED_SCHEDULER', `${label} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new DeltacError('DELTAC_E_UNSUPPORTED_SCHEDULER', `${label} is not a JSON object`);
  }
  return parsed as SchedulerConfig;
}
