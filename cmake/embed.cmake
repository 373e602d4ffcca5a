# Turns a text file into a C header holding it as one string constant.
file(READ "${IN}" content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," content "${content}")
file(WRITE "${OUT}" "/* generated from ${IN}; do not edit */\nstatic const char sg_demo_conf[] = {${content} 0x00};\n")
