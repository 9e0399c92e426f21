/* types.c - element types: names and sizes (the numbers are the on-disk ones). */
#include "pefa.h"

const char *pefa_type_name(uint8_t elem)
{
    static const char *names[] = {"bytes", "f32", "f16", "i8", "u32", "u64"};
    return elem < sizeof names / sizeof names[0] ? names[elem] : "unknown";
}

size_t pefa_type_size(uint8_t elem)
{
    static const size_t sizes[] = {1, 4, 2, 1, 4, 8};
    return elem < sizeof sizes / sizeof sizes[0] ? sizes[elem] : 0;
}
