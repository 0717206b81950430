"""Container networking on one host: the bridge, addresses, NAT and published ports, routes to the
other hosts' subnets, and the DNS server for service names. Pure planning lives in `plan.py`;
each kernel facility has its module (`links.py` netlink through pyroute2, `firewall.py` iptables,
`dns.py`); `manager.py` is the domain layer the container service calls."""
