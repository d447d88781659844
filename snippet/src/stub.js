window.smsr=window.smsr||function(){(smsr.q=smsr.q||[]).push(arguments)}
