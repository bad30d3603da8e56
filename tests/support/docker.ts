// The unit tests' model of Docker; tests/e2e/firewall.test.ts checks it against the real dockerd.

/** Docker's filter and nat chains as dockerd leaves them with its default bridge docker0 (iptables-nft), as
 * Debian 12's docker.io (20.10) makes them in a lab host. */
export const DOCKER_SETUP = [
  "iptables -N DOCKER",
  "iptables -N DOCKER-ISOLATION-STAGE-1",
  "iptables -N DOCKER-ISOLATION-STAGE-2",
  "iptables -N DOCKER-USER",
  "iptables -P FORWARD DROP",
  "iptables -A FORWARD -j DOCKER-USER",
  "iptables -A FORWARD -j DOCKER-ISOLATION-STAGE-1",
  "iptables -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
  "iptables -A FORWARD -o docker0 -j DOCKER",
  "iptables -A FORWARD -i docker0 ! -o docker0 -j ACCEPT",
  "iptables -A FORWARD -i docker0 -o docker0 -j ACCEPT",
  "iptables -A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2",
  "iptables -A DOCKER-ISOLATION-STAGE-1 -j RETURN",
  "iptables -A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP",
  "iptables -A DOCKER-ISOLATION-STAGE-2 -j RETURN",
  "iptables -A DOCKER-USER -j RETURN",
  "iptables -t nat -N DOCKER",
  "iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
  "iptables -t nat -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER",
  "iptables -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE",
  "iptables -t nat -A DOCKER -i docker0 -j RETURN",
].join(" && ");
