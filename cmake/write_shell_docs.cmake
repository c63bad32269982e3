# Writes the man page and the shell completions of a built mmx (cmake -DMMX=... -DOUT=... -P this file):
# `mmx manpage` and `mmx completion SHELL` print them from the parser's own tables.
foreach(doc "manpage;man1/mmx.1" "completion;bash;bash-completion/completions/mmx"
            "completion;zsh;zsh/vendor-completions/_mmx" "completion;fish;fish/vendor_completions.d/mmx.fish")
  list(POP_BACK doc file)
  get_filename_component(dir "${OUT}/${file}" DIRECTORY)
  file(MAKE_DIRECTORY "${dir}")
  execute_process(COMMAND "${MMX}" ${doc} OUTPUT_FILE "${OUT}/${file}.tmp" RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "mmx ${doc} failed: ${status}")
  endif()
  file(RENAME "${OUT}/${file}.tmp" "${OUT}/${file}")
endforeach()
