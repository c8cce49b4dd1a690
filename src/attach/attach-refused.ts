// The error an attach attempt ends with when carnx leaves an interface alone, and why.
export type RefusalReason = 'foreign-program' | 'mode-refused' | 'pin-failed';

/** carnx did not attach to an interface; the agent logs it and carries on with the others. */
export class AttachRefused extends Error {
  readonly reason: RefusalReason;
  readonly foreignProgId: number;

  constructor(reason: RefusalReason, message: string, foreignProgId = 0) {
    super(message);
    this.name = 'AttachRefused';
    this.reason = reason;
    this.foreignProgId = foreignProgId;
  }
}
