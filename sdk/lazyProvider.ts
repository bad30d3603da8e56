import * as pulumi from "@pulumi/pulumi";

/**
 * A dynamic provider whose methods load the implementation module lazily. Pulumi serializes this provider
 * into the state: it captures nothing but the module path, so it stays a few KB and holds no secret. The
 * path resolves in the program's node_modules, where Pulumi's plugin looks.
 */
export function lazyProvider(module: string): pulumi.dynamic.ResourceProvider {
  return {
    // The plugin configures each deserialized provider on its own: every one reads the stack config.
    async configure(req: pulumi.dynamic.ConfigureRequest) {
      require("pulumi-virtnet/dist/provider/resources/connection.js").configureFromStack(req.config);
    },
    async check(olds: any, news: any) {
      return require(module).check(olds, news);
    },
    async diff(id: string, olds: any, news: any) {
      return require(module).diff(id, olds, news);
    },
    async create(inputs: any) {
      return require(module).create(inputs);
    },
    async read(id: string, props: any) {
      return require(module).read(id, props);
    },
    async update(id: string, olds: any, news: any) {
      return require(module).update(id, olds, news);
    },
    async delete(id: string, props: any) {
      return require(module).remove(id, props);
    },
  };
}
