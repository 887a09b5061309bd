# Turns a file into a C array: cmake -DIN=file -DOUT=file.c -DSYM=name -P embed.cmake
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" len)
math(EXPR size "${len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" body "${body}")
file(WRITE ${OUT} "/* generated from ${IN} */\n#include <stddef.h>\n"
  "extern const unsigned char ${SYM}[];\nextern const size_t ${SYM}_len;\n"
  "const unsigned char ${SYM}[] = {\n${body}0x00};\nconst size_t ${SYM}_len = ${size};\n")
