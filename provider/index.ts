// The implementation: knows nothing of Pulumi.
export {};
