/* The size classes as tables, for the paths that must not branch on a
 * size or a class: the class of each small size (size_class_lookup: the
 * malloc fast path and the refill) and the bytes of each class
 * (class_size: the cache's limits, the central lists).  A leaf, read
 * through those two inline functions of internal.h; the round-trip test
 * (tests/unit/size_classes_round_trip) holds them to size_class. */
#include "internal.h"

/* size_class of 0..2,048 bytes, written out (tests/unit/size_classes_round_trip
 * checks each entry): 0 for no bytes, 16-byte steps to 512, then four
 * classes a doubling (128 bytes apart to 1 KiB, 256 to 2 KiB). */
#define CLASS_16(cls) cls, cls, cls, cls, cls, cls, cls, cls, cls, cls, cls, cls, cls, cls, cls, cls
#define CLASS_128(cls) CLASS_16(cls), CLASS_16(cls), CLASS_16(cls), CLASS_16(cls), \
                       CLASS_16(cls), CLASS_16(cls), CLASS_16(cls), CLASS_16(cls)
#define CLASS_256(cls) CLASS_128(cls), CLASS_128(cls)

const uint8_t hmm_class_of[CLASS_TABLE_MAX + 1] = {
    0,
    CLASS_16(1), CLASS_16(2), CLASS_16(3), CLASS_16(4), CLASS_16(5), CLASS_16(6), CLASS_16(7), CLASS_16(8),
    CLASS_16(9), CLASS_16(10), CLASS_16(11), CLASS_16(12), CLASS_16(13), CLASS_16(14), CLASS_16(15),
    CLASS_16(16), CLASS_16(17), CLASS_16(18), CLASS_16(19), CLASS_16(20), CLASS_16(21), CLASS_16(22),
    CLASS_16(23), CLASS_16(24), CLASS_16(25), CLASS_16(26), CLASS_16(27), CLASS_16(28), CLASS_16(29),
    CLASS_16(30), CLASS_16(31), CLASS_16(32),
    CLASS_128(33), CLASS_128(34), CLASS_128(35), CLASS_128(36),
    CLASS_256(37), CLASS_256(38), CLASS_256(39), CLASS_256(40),
};

_Static_assert(sizeof hmm_class_of == 1 + 32 * 16 + 12 * 128, "one entry for each size, 0 to 2 KiB");

/* class_size of each class, written out: the same two formulas as
 * size_class, inverted (the round-trip test holds them together). */
const uint32_t hmm_class_bytes[CLASS_COUNT] = {
    0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 272, 288, 304, 320,
    336, 352, 368, 384, 400, 416, 432, 448, 464, 480, 496, 512, 640, 768, 896, 1024, 1280, 1536,
    1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192, 10240, 12288, 14336, 16384, 20480,
    24576, 28672, 32768, 40960, 49152, 57344, 65536,
};
