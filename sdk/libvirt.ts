// libvirt network XML import for Pulumi programs (work in progress: the implementation lands next).
export {};
