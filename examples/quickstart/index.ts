// Quickstart: filled in by the VirtualNetwork work.
export {};
