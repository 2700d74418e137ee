import { InvalidArgumentError } from 'commander';
import { MirrorlabError } from '../../firmware/errors.ts';
import { UsageError, parsePerMillion } from '../plan-error.ts';

/**
 * Flag parsers for commander: each checks one value and says what is allowed when it is wrong.
 * They throw commander's InvalidArgumentError, which the CLI turns into exit status 2.
 */
export function integer(name: string, min: number, max: number) {
  return (text: string): number => {
    const v = Number(text);
    if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new InvalidArgumentError(`${name} takes an integer from ${min} to ${max}, got "${text}"`);
    }
    return v;
  };
}

export function decimal(name: string, min: number, max: number, minExclusive = false) {
  return (text: string): number => {
    const v = Number(text);
    const low = minExclusive ? v > min : v >= min;
    if (text.trim() === '' || !Number.isFinite(v) || !low || v > max) {
      throw new InvalidArgumentError(`${name} takes a number ${minExclusive ? 'above' : 'from'} ${min}${max === Infinity ? '' : ` to ${max}`}, got "${text}"`);
    }
    return v;
  };
}

export function choice<T extends string>(name: string, allowed: readonly T[]) {
  return (text: string): T => {
    if (!(allowed as readonly string[]).includes(text)) throw new InvalidArgumentError(`${name} must be one of ${allowed.join(', ')}, got "${text}"`);
    return text as T;
  };
}

export function probability(name: string) {
  return (text: string): number => {
    try {
      return parsePerMillion(text, name);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** Run a plan parser (fault plans, volume specs), turning its typed error into a flag error. */
export function plan<T>(parse: (text: string) => T) {
  return (text: string): T => {
    try {
      return parse(text);
    } catch (err) {
      if (err instanceof UsageError || err instanceof MirrorlabError) throw new InvalidArgumentError(err.message);
      throw err;
    }
  };
}
