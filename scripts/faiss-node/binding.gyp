# node-gyp recipe for faiss-node 0.5.1 (copied into node_modules/faiss-node by scripts/build-faiss-node.sh).
# Replaces the package's cmake-js build, which clones faiss from GitHub: we link Debian's static libfaiss.a
# (libfaiss-dev 1.7.3) and OpenBLAS instead. Output: build/Release/faiss-node.node (found by `bindings`).
{
  "targets": [
    {
      "target_name": "faiss-node",
      "sources": ["src/faiss.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=6", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
      "cflags_cc": [
        "-std=c++17",
        "-fexceptions",
        "-frtti",
        "-fopenmp",
        "-O2",
        "-Wno-unused-but-set-variable",
        "-Wno-unused-variable",
        "-include",
        "<(module_root_dir)/cotmae/faiss_compat.h"
      ],
      "libraries": ["-lfaiss", "-fopenmp", "-lopenblas", "-llapack", "-lblas"]
    }
  ]
}
