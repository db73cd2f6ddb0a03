mod gradcheck;
