import { MirrorlabError } from '../../../../firmware/errors.ts';
import type { Random } from '../../../../firmware/ports/random.ts';

/**
 * The faults an emulated USB mass-storage device can be told to commit (docs/usb-serial-targets.md),
 * each with a chance per command (per transfer for `disconnect`), drawn from the run's seed:
 *
 *   stall-in         STALL bulk-in: instead of the data (the command then fails, ABORTED COMMAND),
 *                    or once on the CSW (the host must clear it and read the CSW again)
 *   stall-out        STALL bulk-out in a WRITE's data phase (the write is not done; ABORTED COMMAND)
 *   short            a READ sends only part of its data, and says so in the CSW residue
 *   zlp              a zero-length packet where the CSW should be, or instead of a READ's data
 *   csw-signature    a CSW with a wrong signature (the host must do a reset recovery)
 *   csw-tag          a CSW whose tag answers another CBW (likewise)
 *   phase            a CSW saying phase error (likewise), or, half the time, an internal error: no CSW,
 *                    both pipes STALLed until a full reset recovery (BOT 6.6.2)
 *   medium           a READ fails with MEDIUM ERROR sense at an LBA inside it (transient: the data is fine)
 *   unit-attention   a command fails with UNIT ATTENTION (reset occurred), as after every reset
 *   disconnect       the device drops off the bus in the middle of a transfer and comes back
 *
 * Every fault but `medium` must be invisible to a correct driver apart from time and counters;
 * `medium` must reach the caller as a MediaError naming an LBA of the request, never as wrong data.
 */
export const USB_EMU_FAULT_KINDS = [
  'stall-in', 'stall-out', 'short', 'zlp', 'csw-signature', 'csw-tag', 'phase', 'medium', 'unit-attention', 'disconnect',
] as const;
export type UsbEmuFaultKind = (typeof USB_EMU_FAULT_KINDS)[number];

/** Chances in parts per million, by kind (docs/design.md 2.6: integer ratios). */
export type UsbEmuFaultPlan = Partial<Record<UsbEmuFaultKind, number>>;

/** Chance used when a kind is named without `@P`. */
export const USB_EMU_FAULT_PER_MILLION_DEFAULT = 20_000;
/** Highest chance accepted: a device that faults every time would never complete a command. */
export const USB_EMU_FAULT_PER_MILLION_MAX = 500_000;

export const USB_EMU_FAULT_SYNTAX =
  `faults=KIND[@P][,KIND[@P]...], KIND one of ${USB_EMU_FAULT_KINDS.join(', ')}, P a chance per command from 0 to 0.5 ` +
  `(default ${USB_EMU_FAULT_PER_MILLION_DEFAULT / 1_000_000}), e.g. faults=stall-in@0.05,csw-tag,disconnect@0.001`;

export class UsbEmuFaultError extends MirrorlabError {
  constructor(message: string) {
    super('ML_ERR_USB_EMU_FAULTS', message);
  }
}

/** Parses the value of `faults=` (`stall-in@0.05,csw-tag`); throws saying what is allowed. */
export function parseUsbEmuFaults(text: string): UsbEmuFaultPlan {
  const plan: UsbEmuFaultPlan = {};
  for (const item of text.split(',')) {
    const [kind = '', chance, extra] = item.split('@');
    if (!(USB_EMU_FAULT_KINDS as readonly string[]).includes(kind)) throw new UsbEmuFaultError(`unknown USB fault ${JSON.stringify(kind)}; ${USB_EMU_FAULT_SYNTAX}`);
    if (extra !== undefined) throw new UsbEmuFaultError(`USB fault ${JSON.stringify(item)} has two '@'; ${USB_EMU_FAULT_SYNTAX}`);
    const k = kind as UsbEmuFaultKind;
    if (plan[k] !== undefined) throw new UsbEmuFaultError(`USB fault ${k} named twice; ${USB_EMU_FAULT_SYNTAX}`);
    plan[k] = chance === undefined ? USB_EMU_FAULT_PER_MILLION_DEFAULT : perMillion(chance, item);
  }
  return plan;
}

function perMillion(text: string, item: string): number {
  const v = /^(0|0?\.\d{1,6}|1(\.0*)?)$/.test(text) ? Number(text) : NaN;
  const ppm = Math.round(v * 1_000_000);
  if (!(ppm >= 0 && ppm <= USB_EMU_FAULT_PER_MILLION_MAX)) throw new UsbEmuFaultError(`USB fault ${JSON.stringify(item)}: the chance must be a decimal from 0 to 0.5; ${USB_EMU_FAULT_SYNTAX}`);
  return ppm;
}

/** The canonical text of a plan (what {@link parseUsbEmuFaults} reads back to the same plan). */
export function formatUsbEmuFaults(plan: UsbEmuFaultPlan): string {
  return USB_EMU_FAULT_KINDS.filter((k) => plan[k] !== undefined).map((k) => `${k}@${plan[k]! / 1_000_000}`).join(',');
}

/** Draws the plan's faults from a seeded stream, and counts those committed. */
export class UsbEmuFaults {
  readonly injected: Record<UsbEmuFaultKind, number> = Object.fromEntries(USB_EMU_FAULT_KINDS.map((k) => [k, 0])) as Record<UsbEmuFaultKind, number>;

  constructor(private readonly plan: UsbEmuFaultPlan, private readonly random: Random) {}

  /** Whether the plan names this kind at all. */
  has(kind: UsbEmuFaultKind): boolean {
    return (this.plan[kind] ?? 0) > 0;
  }

  /** Draws whether `kind` strikes now; counts it if so. */
  strikes(kind: UsbEmuFaultKind): boolean {
    const ppm = this.plan[kind] ?? 0;
    if (ppm === 0 || !this.random.chance(ppm, 1_000_000)) return false;
    this.injected[kind]++;
    return true;
  }

  /** A uniform draw in [0, bound), for where a fault strikes. */
  pick(bound: number): number {
    return this.random.int(Math.max(1, bound));
  }
}
