/* UTF-8 validation for TEXT messages and close reasons. */
#ifndef PICOWS_UTF8_H
#define PICOWS_UTF8_H

#include <string.h>
#include <stdint.h>

/* Incremental UTF-8 validation (RFC 3629, no surrogates, no overlongs,
   nothing above U+10FFFF). State 0: at a code point boundary; 1: invalid
   (final); 2-8: inside a sequence, encoding what the next byte must be. */
static inline uint32_t picows_utf8_validate(uint32_t s, const uint8_t* p,
                                            size_t n) {
    size_t i = 0;
    uint64_t w;
    uint8_t c;
    while (i < n) {
        if (s == 0) {
            while (i + 8 <= n) {
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ULL) break;
                i += 8;
            }
            if (i >= n) break;
            c = p[i++];
            if (c < 0x80) continue;
            else if (c < 0xC2) return 1;
            else if (c < 0xE0) s = 2;
            else if (c == 0xE0) s = 5;
            else if (c == 0xED) s = 6;
            else if (c < 0xF0) s = 3;
            else if (c == 0xF0) s = 7;
            else if (c < 0xF4) s = 4;
            else if (c == 0xF4) s = 8;
            else return 1;
        } else {
            c = p[i++];
            switch (s) {
            case 2: if ((c & 0xC0) != 0x80) return 1; s = 0; break;
            case 3: if ((c & 0xC0) != 0x80) return 1; s = 2; break;
            case 4: if ((c & 0xC0) != 0x80) return 1; s = 3; break;
            case 5: if (c < 0xA0 || c > 0xBF) return 1; s = 2; break;
            case 6: if (c < 0x80 || c > 0x9F) return 1; s = 2; break;
            case 7: if (c < 0x90 || c > 0xBF) return 1; s = 3; break;
            case 8: if (c < 0x80 || c > 0x8F) return 1; s = 3; break;
            default: return 1;
            }
        }
    }
    return s;
}

#endif /* PICOWS_UTF8_H */
