export * from './clock.ts';
export * from './random.ts';
export * from './block-device.ts';
export * from './link.ts';
export * from './telemetry.ts';
