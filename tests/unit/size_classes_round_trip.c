/* Size classes: every class's size maps back to the class, every size from
 * 1 byte to CLASS_MAX maps to the smallest class that holds it, larger
 * sizes to class 0 (not cacheable), and a class's blocks have its size in
 * units plus the header (plus the canary with check=full).  The malloc
 * fast path's table (hmm_class_of, up to CLASS_TABLE_MAX) and its lookup,
 * table and formula on either side of the table's end, agree with
 * size_class on every size. */
#include "internal.h"
#include "testutil.h"

int main(void)
{
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++) {
        CHECK(size_class(class_size(cls)) == cls, "class %u: size %zu maps to class %u", cls,
              class_size(cls), size_class(class_size(cls)));
        CHECK(class_size(cls) % UNIT == 0, "class %u: size %zu is not whole units", cls, class_size(cls));
        if (cls > 1)
            CHECK(class_size(cls) > class_size(cls - 1), "class %u is not larger than the one below", cls);
    }
    CHECK(class_size(CLASS_COUNT - 1) == CLASS_MAX, "the last class holds %zu, not CLASS_MAX",
          class_size(CLASS_COUNT - 1));
    for (size_t size = 1; size <= CLASS_MAX; size++) {
        unsigned cls = size_class(size);
        CHECK(cls > 0 && cls < CLASS_COUNT && class_size(cls) >= size, "size %zu: class %u too small", size, cls);
        CHECK(cls == 1 || class_size(cls - 1) < size, "size %zu: class %u is not the smallest", size, cls);
    }
    for (size_t size = 0; size <= CLASS_TABLE_MAX; size++)
        CHECK(hmm_class_of[size] == size_class(size), "size %zu: the table says class %u, size_class %u", size,
              hmm_class_of[size], size_class(size));
    for (size_t size = 0; size <= CLASS_MAX + 1; size++)
        CHECK(size_class_lookup(size) == size_class(size), "size %zu: the lookup says class %u, size_class %u",
              size, size_class_lookup(size), size_class(size));
    CHECK(size_class(CLASS_MAX + 1) == 0 && size_class((size_t)1 << 40) == 0, "large sizes have a class");

    for (unsigned cls = 1; cls < CLASS_COUNT; cls++)
        CHECK(class_units(cls) == class_size(cls) / UNIT + 1, "class %u: %u units", cls, class_units(cls));
    hmm_tunables.check_level = CHECK_FULL;
    for (unsigned cls = 1; cls < CLASS_COUNT; cls++)
        CHECK(class_units(cls) == class_size(cls) / UNIT + 2, "check=full, class %u: %u units", cls,
              class_units(cls));
    return 0;
}
