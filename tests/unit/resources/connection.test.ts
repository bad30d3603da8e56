// How a resource's connection is completed: stack-config defaults, then the ssh-agent of the provider's process.
import { expect } from "chai";
import { configureDefaults, resolveConnection } from "../../../provider/resources/connection";

describe("resources/connection: the ssh-agent (SSH_AUTH_SOCK) as the login of last resort", () => {
  const saved = process.env.SSH_AUTH_SOCK;
  beforeEach(() => {
    configureDefaults({});
    process.env.SSH_AUTH_SOCK = "/tmp/ssh-XXXX/agent.42";
  });
  afterEach(() => {
    configureDefaults({});
    if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
    else process.env.SSH_AUTH_SOCK = saved;
  });

  it("gives a hop with no key, password or agent socket the agent, the proxy hop too", () => {
    const c = resolveConnection({ host: "h", proxy: { host: "bastion" } });
    expect(c.agentSocket).to.equal("/tmp/ssh-XXXX/agent.42");
    expect(c.proxy!.agentSocket).to.equal("/tmp/ssh-XXXX/agent.42");
  });

  it("leaves a hop that has a way to log in alone, and an agent socket given as it is", () => {
    expect(resolveConnection({ host: "h" }, { privateKey: "k" }).agentSocket).to.equal(undefined);
    expect(resolveConnection({ host: "h" }, { password: "p" }).agentSocket).to.equal(undefined);
    expect(resolveConnection({ host: "h", agentSocket: "/run/a.sock" }).agentSocket).to.equal("/run/a.sock");
    configureDefaults({ privateKey: "stack key" });
    expect(resolveConnection({ host: "h" }).agentSocket).to.equal(undefined);
  });

  it("adds nothing without SSH_AUTH_SOCK (validation then asks for a way to log in)", () => {
    delete process.env.SSH_AUTH_SOCK;
    expect(resolveConnection({ host: "h" })).to.deep.equal({ host: "h" });
  });
});
