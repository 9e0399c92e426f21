/* ids.c - the one rule for users' external ids (format [I6], pefa.h
 * pefa_id_check): what every output format of the tools can carry as is. */
#include "common/error.h"
#include "pefa.h"

#define ID_RULE "an id is 1..511 bytes of UTF-8 without spaces or control characters, format [I6]"

/* length of the UTF-8 sequence at p (n bytes left) and its code point, or 0
 * if it is not valid UTF-8 (overlong forms, surrogates, > U+10FFFF) */
static size_t utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
    size_t len;
    if (p[0] < 0x80) return *cp = p[0], 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) len = 2, *cp = p[0] & 0x1Fu;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF) len = 3, *cp = p[0] & 0x0Fu;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4) len = 4, *cp = p[0] & 0x07u;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        *cp = (*cp << 6) | (p[i] & 0x3Fu);
    }
    if ((len == 3 && (*cp < 0x800 || (*cp >= 0xD800 && *cp <= 0xDFFF))) || (len == 4 && (*cp < 0x10000 || *cp > 0x10FFFF)))
        return 0;
    return len;
}

int pefa_id_check(const char *id, size_t len)
{
    const unsigned char *p = (const unsigned char *)id;
    RETURN_ERROR_IF(!id || len == 0, PEFA_ERR_BAD_INPUT, "is empty (" ID_RULE ")");
    RETURN_ERROR_IF(len > PEFA_MAX_ID_BYTES, PEFA_ERR_BAD_INPUT, "is %zu bytes long (" ID_RULE ")", len);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = utf8_seq(p + i, len - i, &cp);
        RETURN_ERROR_IF(l == 0, PEFA_ERR_BAD_INPUT, "is not valid UTF-8 at byte %zu (0x%02x) (" ID_RULE ")", i, p[i]);
        RETURN_ERROR_IF(cp == ' ', PEFA_ERR_BAD_INPUT, "has a space at byte %zu (" ID_RULE ")", i);
        RETURN_ERROR_IF(cp == '\t', PEFA_ERR_BAD_INPUT, "has a tab at byte %zu (" ID_RULE ")", i);
        RETURN_ERROR_IF(cp < 0x20 || (cp >= 0x7F && cp <= 0x9F), PEFA_ERR_BAD_INPUT,
                        "has the control character U+%04X at byte %zu (" ID_RULE ")", (unsigned)cp, i);
        i += l;
    }
    return 0;
}
