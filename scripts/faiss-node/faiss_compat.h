// Force-included (-include) when building faiss-node 0.5.1 against Debian bookworm's libfaiss 1.7.3.
// faiss-node uses faiss::idx_t, which appeared in faiss 1.7.4; 1.7.3 only has faiss::Index::idx_t.
#pragma once
#include <cstdint>
namespace faiss {
using idx_t = int64_t;
}
