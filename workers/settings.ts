/**
 * Worker settings both workers share. The SDK throttles heartbeats to 80% of the heartbeat timeout, at most
 * 60 s by default: a cancellation (delivered in a heartbeat's reply) could then take a minute to reach a
 * trainer. Capping the throttle at 5 s brings cancellation and progress to the server within seconds.
 */
export const HEARTBEAT_THROTTLE = {
  maxHeartbeatThrottleInterval: '5s',
  defaultHeartbeatThrottleInterval: '5s',
} as const;
