# Writes a large deterministic C translation unit for the gcc smoke test:
# N functions (awk -v n=N) that loop, switch, index tables, fill structs and
# call earlier functions, so that gcc -O2 inlines, unrolls and allocates a lot.
# 32-bit LCG: every intermediate fits a double exactly, so mawk and gawk agree.
function rnd(m) { seed = (seed * 69069 + 1) % 4294967296; return int(seed / 65536) % m }
BEGIN {
    if (!n) n = 3000
    seed = 42
    print "#include <stddef.h>"
    print "struct rec { int a; long b; double c; char name[16]; struct rec *next; };"
    print "extern void sink(const void *, size_t);"
    for (i = 0; i < n; i++) {
        m = 8 + rnd(8)
        printf "static const int tbl%d[%d] = {", i, m
        for (j = 0; j < m; j++) printf "%s%d", (j ? ", " : ""), rnd(30000) - 15000
        print "};"
        printf "%sint f%d(int x, int y)\n{\n", (rnd(3) ? "static " : ""), i
        print "    int acc = " rnd(1000) ";"
        print "    struct rec r[4];"
        print "    for (int i = 0; i < (x & 15) + " (1 + rnd(9)) "; i++) {"
        print "        switch ((i + y) & 7) {"
        for (c = 0; c < 8; c++) {
            op = rnd(5)
            if (op == 0) e = "acc += i * " rnd(97)
            else if (op == 1) e = "acc ^= tbl" i "[(i + acc) & 7] >> " rnd(8)
            else if (op == 2) e = "acc = acc * " (1 + rnd(13)) " + y"
            else if (op == 3 && i > 0) e = "acc += f" rnd(i) "(acc & 255, i)"
            else e = "r[i & 3].a = acc; r[i & 3].b = (long)acc << " rnd(20) "; r[i & 3].c = acc * " rnd(10) ".5; acc += (int)r[(i + 1) & 3].c"
            print "        case " c ": " e "; break;"
        }
        print "        }"
        print "    }"
        if (rnd(4) == 0) print "    sink(r, sizeof r);"
        if (i > 0) print "    return acc + (x > 3 ? f" rnd(i) "(x - 1, acc & 1023) : 0);"
        else print "    return acc;"
        print "}"
    }
    print "int entry(int x, int y)"
    print "{"
    print "    int acc = 0;"
    for (i = 0; i < n; i += 1 + rnd(3)) print "    acc += f" i "(x, y + " i ");"
    print "    return acc;"
    print "}"
}
