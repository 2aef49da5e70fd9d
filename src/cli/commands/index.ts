/** Every CLI command, in the order `deltac --help` lists them. */
import type { Command } from '../main.js';
import { inspectCommand } from './inspect.js';
import { printCommand } from './print.js';

export const COMMANDS: Command[] = [inspectCommand, printCommand];
