// Public SDK of pulumi-virtnet. Resources are added by later issues.
export {};
