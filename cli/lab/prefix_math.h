#pragma once

// Carving prefixes into sub-prefixes and picking addresses inside them, for labs built from a
// policy (cli/lab/policy_lab.h). Pure arithmetic on IpPrefix, both families.

#include <cstdint>

#include "cli/lab/lab.h"
#include "common/ip_prefix.h"

namespace shadan {

// The smallest k with 2^k >= n (0 for n <= 1).
int ceilLog2(uint64_t n);

// The `index`-th sub-prefix of length `length` inside `parent`.
// REQUIRES: parent.length() <= length <= parent.maxLength(), length - parent.length() <= 32 and
// index < 2^(length - parent.length()).
IpPrefix subPrefix(const IpPrefix& parent, int length, uint64_t index);

// Which sub-prefix of length `length` of `parent` holds `address`.
// REQUIRES: parent.contains(address), length - parent.length() <= 32.
uint64_t subPrefixIndex(const IpPrefix& parent, int length, const IpPrefix& address);

// The address `offset` places after the network address of `prefix` (a host prefix).
// REQUIRES: offset < the number of addresses in `prefix`.
IpPrefix addressAt(const IpPrefix& prefix, uint64_t offset);

// `host` (a host prefix) as an interface address with on-link length `length`.
LabAddress labAddressOf(const IpPrefix& host, int length);

// True if `host` is an address of `subnet` that an interface should not carry: the network
// address (IPv4: a broadcast address for Linux; IPv6: the subnet-router anycast address that a
// forwarding gateway answers) or the IPv4 broadcast address. Never true for /31, /32, /127, /128.
bool isReservedAddress(const IpPrefix& subnet, const IpPrefix& host);

}  // namespace shadan
