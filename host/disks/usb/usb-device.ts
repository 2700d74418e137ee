/**
 * The part of the WebUSB `USBDevice` interface (https://wicg.github.io/webusb/) the mass-storage
 * driver uses, typed here rather than through the DOM typings so the driver depends on exactly
 * this much. The `usb` package's devices provide it (v3 follows WebUSB, plus an optional timeout
 * argument and kernel-driver calls on Linux); so does the emulated device (emulated/).
 */
export type UsbDirection = 'in' | 'out';
export type UsbTransferStatus = 'ok' | 'stall' | 'babble';

export interface UsbInTransferResult {
  data?: DataView;
  status: UsbTransferStatus;
}

export interface UsbOutTransferResult {
  bytesWritten: number;
  status: UsbTransferStatus;
}

export interface UsbControlSetup {
  requestType: 'standard' | 'class' | 'vendor';
  recipient: 'device' | 'interface' | 'endpoint' | 'other';
  request: number;
  value: number;
  index: number;
}

export interface UsbEndpointInfo {
  endpointNumber: number;
  direction: UsbDirection;
  type: 'bulk' | 'interrupt' | 'isochronous' | 'control';
  packetSize: number;
}

export interface UsbAlternateInfo {
  alternateSetting: number;
  interfaceClass: number;
  interfaceSubclass: number;
  interfaceProtocol: number;
  endpoints: UsbEndpointInfo[];
}

export interface UsbInterfaceInfo {
  interfaceNumber: number;
  claimed: boolean;
  alternate: UsbAlternateInfo;
  alternates: UsbAlternateInfo[];
}

export interface UsbConfigurationInfo {
  configurationValue: number;
  interfaces: UsbInterfaceInfo[];
}

export interface MassStorageUsbDevice {
  readonly vendorId: number;
  readonly productId: number;
  readonly serialNumber?: string | null;
  readonly manufacturerName?: string | null;
  readonly productName?: string | null;
  readonly opened: boolean;
  /** The active configuration (may open the device to read it, with the `usb` package). */
  readonly configuration?: UsbConfigurationInfo | null;
  readonly configurations?: UsbConfigurationInfo[];
  open(): Promise<void>;
  close(): Promise<void>;
  selectConfiguration(configurationValue: number): Promise<void>;
  claimInterface(interfaceNumber: number): Promise<void>;
  releaseInterface(interfaceNumber: number): Promise<void>;
  controlTransferIn(setup: UsbControlSetup, length: number, timeoutMs?: number): Promise<UsbInTransferResult>;
  controlTransferOut(setup: UsbControlSetup, data?: Uint8Array, timeoutMs?: number): Promise<UsbOutTransferResult>;
  transferIn(endpointNumber: number, length: number, timeoutMs?: number): Promise<UsbInTransferResult>;
  transferOut(endpointNumber: number, data: Uint8Array, timeoutMs?: number): Promise<UsbOutTransferResult>;
  clearHalt(direction: UsbDirection, endpointNumber: number): Promise<void>;
  /** Linux only, in the `usb` package: called only when the user passed --detach-kernel-driver. */
  detachKernelDriver?(interfaceNumber: number): Promise<void>;
  attachKernelDriver?(interfaceNumber: number): Promise<void>;
}

/**
 * What a rejected transfer means. WebUSB reports a STALL as a status, but the `usb` package
 * rejects with "transferIn error: Stall" (its native layer's error names: Stall, Disconnected,
 * Cancelled on a timeout, Fault); a browser rejects a vanished device with a NetworkError or
 * NotFoundError. Anything unrecognised is `other`, which the driver treats like a timeout: a
 * reset recovery, then a retry.
 */
export type UsbFailure = 'stall' | 'babble' | 'disconnected' | 'timeout' | 'other';

export function classifyUsbError(error: unknown): UsbFailure {
  const name = (error as { name?: unknown } | null)?.name;
  const message = error instanceof Error ? error.message : String(error);
  if (name === 'NotFoundError' || /disconnected|no such device|not found|ENODEV/i.test(message)) return 'disconnected';
  if (name === 'NetworkError' && !/stall|babble|overflow/i.test(message)) return 'disconnected';
  if (/\bstall/i.test(message)) return 'stall';
  if (/babble|overflow/i.test(message)) return 'babble';
  if (name === 'TimeoutError' || /timed? ?out|cancelled|canceled/i.test(message)) return 'timeout';
  return 'other';
}

/** The bytes of a transfer result (a fresh copy: the driver keeps them). */
export function bytesOf(result: UsbInTransferResult): Uint8Array {
  const view = result.data;
  return view === undefined ? new Uint8Array(0) : new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}
