"""A fixed-size scratch array on the stack, for register tiles.

numba has no local arrays on the CPU: `np.empty` goes to the heap, and LLVM cannot keep heap
memory in registers. An `alloca` of a constant size can: once the loops over a tile are
unrolled, LLVM turns the tile into vector registers (a micro-kernel that accumulates FB x PB
outputs without touching memory). `size` must be a compile-time constant (a literal or a
module-level int). Use it as `carray(stack_pointer(SIZE, x.dtype), shape)`.
numba's cache only watches the file of a cached kernel: after editing this one, delete the
kernels' __pycache__ (or set NUMBA_CACHE_DIR) so they recompile.
"""
from numba import types
from numba.core import cgutils
from numba.core.errors import RequireLiteralValue
from numba.extending import intrinsic


@intrinsic
def stack_pointer(typingctx, size, dtype):
    if not isinstance(size, types.IntegerLiteral):
        raise RequireLiteralValue(size)
    n = size.literal_value

    def codegen(context, builder, signature, args):
        item = context.get_value_type(dtype.dtype)
        return cgutils.alloca_once(builder, item, size=context.get_constant(types.intp, n))

    return types.CPointer(dtype.dtype)(size, dtype), codegen



@intrinsic
def element_pointer(typingctx, arr, index):
    """A raw pointer to arr.flat[index] of a C-contiguous array, for `carray(ptr, (n,))` views
    inside hot loops: slicing (`arr[i:]`) clamps its start on every call, which costs more scalar
    instructions per tap than the micro-kernel's FMAs leave room for. No bounds are checked."""
    if not isinstance(arr, types.Array) or arr.layout != "C" or not isinstance(index, types.Integer):
        return None     # (flat indexing is only right for C-contiguous arrays)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.gep(ary.data, [args[1]])

    return types.CPointer(arr.dtype)(arr, index), codegen
